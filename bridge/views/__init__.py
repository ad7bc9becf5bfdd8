"""Folder views without I/O: the report diff, message sets, the flag model, and a reference model.

A XIMSS client keeps its own copy of each open folder's sorted, filtered view and changes it only
when `folderReport` messages tell it to. Everything that decides *what* to tell it lives here, as
pure functions over UIDs and message summaries, so it can be property-tested against a model
without a server; the session and the IMAP adapter only feed it data and send what it returns.
"""

from bridge.views.diff import Report, apply, diff
from bridge.views.messageset import MessageSet, parse_message_set, resolve, resolve_indexes
from bridge.views.model import Message, ViewSpec, build_view

__all__ = [
    "Message",
    "MessageSet",
    "Report",
    "ViewSpec",
    "apply",
    "build_view",
    "diff",
    "parse_message_set",
    "resolve",
    "resolve_indexes",
]
