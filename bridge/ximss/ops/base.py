"""What every operation shares: when it may run, and how it ends."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.protocols import SaslExchange

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation


class Phase(enum.Enum):
    PRELOGIN = "before login only"
    SESSION = "after login only"
    ANY = "any time"


class Outcome(enum.Enum):
    DONE = "send the response"
    DEFERRED = "the response comes later (SASL challenge)"
    CLOSE = "send the response, then end the connection"
    STARTTLS = "send the response, then start TLS on the connection"


Handler = Callable[["Conversation", "Request"], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Operation:
    handler: Handler
    phase: Phase


@dataclass(slots=True)
class PendingSasl:
    """A login waiting for the client's `auth` answer to its challenge."""

    exchange: SaslExchange
    domain: str
    mechanism: str
