"""One logged-in user: identity, the backend handles the session owns, and its lifetime."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field

from adapters.protocols import MailStore

_URL_ALPHABET = string.ascii_letters + string.digits


def new_url_id() -> str:
    """`123456-` then 24 letters and digits: 6 digits plus about 143 random bits, one dash, as
    clients that split the id at its dash expect."""
    prefix = secrets.randbelow(900000) + 100000
    tail = "".join(secrets.choice(_URL_ALPHABET) for _ in range(24))
    return f"{prefix}-{tail}"


@dataclass(slots=True, eq=False)
class Session:
    account: str  # name@domain
    domain: str
    real_name: str | None
    mail: MailStore
    url_id: str = field(default_factory=new_url_id)
    created: float = field(default_factory=time.time)
    closed: bool = False

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.mail.close()
