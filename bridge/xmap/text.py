"""Text on its way into an attribute value.

Subjects and addresses come from mail headers and folder names from the backend; either may hold
characters XML 1.0 cannot carry (C0 controls, lone surrogates from undecodable bytes), which lxml
refuses with an exception. Each becomes U+FFFD, so a strange subject costs one odd character, not
the whole folder listing.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(value: str) -> str:
    return _NOT_XML.sub(REPLACEMENT, value)
