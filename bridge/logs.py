"""Log output: text for people, one JSON object per line for collectors, and the session, account
and peer of the work being done on every line.

The three context variables are set where a connection or a session's request runs (transports,
conversations); asyncio copies them into the tasks started from there, so every log call made for
that work carries them without passing them along. The session is shown by its label, the
6-digit head of its urlID: the rest of the urlID lets an HTTP client act as the session, and logs
must not hand that out.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Final, Literal

SESSION: ContextVar[str | None] = ContextVar("log_session", default=None)
ACCOUNT: ContextVar[str | None] = ContextVar("log_account", default=None)
PEER: ContextVar[str | None] = ContextVar("log_peer", default=None)

# Record attributes filled from the context variables, in the order lines show them.
CONTEXT_FIELDS: Final = ("session", "account", "peer")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"

LogFormat = Literal["text", "json"]


def session_label(url_id: str) -> str:
    """What logs show of a session's urlID (its 6-digit head, never the secret tail)."""
    return url_id.partition("-")[0]


def bind_peer(peer: str) -> None:
    PEER.set(peer)


def bind_session(url_id: str, account: str) -> None:
    SESSION.set(session_label(url_id))
    ACCOUNT.set(account)


class ContextFilter(logging.Filter):
    """Copies the context variables onto each record (unless the call gave them in `extra`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in zip(CONTEXT_FIELDS, (SESSION, ACCOUNT, PEER), strict=True):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class TextFormatter(logging.Formatter):
    """Today's look, with ` session=<label>` appended when the line belongs to a session."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        session = getattr(record, "session", None)
        if session and f"session={session}" not in record.getMessage():
            head, newline, rest = line.partition("\n")  # keep a traceback below the line
            line = f"{head} session={session}{newline}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the context
    fields that are known; a traceback goes in `exception`, so it stays on the same line."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


FORMATTERS: Final[dict[str, type[logging.Formatter]]] = {
    "text": TextFormatter,
    "json": JsonFormatter,
}

# The bridge's own handler once configured (a list: configured again, it is reused).
_HANDLER: list[logging.Handler] = []


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Route every logger to stderr in the given format; called again (SIGHUP), it replaces the
    bridge's handler's format and the level instead of adding another handler."""
    root = logging.getLogger()
    if not _HANDLER:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
        _HANDLER.append(handler)
    _HANDLER[0].setFormatter(FORMATTERS[log_format]())
    root.setLevel(level.upper())
