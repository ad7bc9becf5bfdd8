"""A session's signaling binding (signalBind): its SIP user agent and its calls by callLeg.

The binding holds state only; the signaling operations (bridge/ximss/ops/signaling.py) drive it
and turn the agent's events into XIMSS messages.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from adapters.protocols import SignalingAgent, SignalingCall
from bridge.errors import BridgeError, ErrorKind
from bridge.transport.tasks import TaskSet

# Calls one session may hold at once (each is a SIP dialog in the agent).
MAX_CALLS = 16


@dataclass(eq=False)
class Offers:
    """The o= line's session id and version of our side of one call: the version grows with
    each new description we send (RFC 3264)."""

    session_id: int = field(default_factory=lambda: secrets.randbelow(1 << 31))
    version: int = 0

    def next(self) -> int:
        self.version += 1
        return self.version


@dataclass(eq=False)
class CallLeg:
    leg: str  # the client's identifier (callStart) or ours (callIncoming: "inp1"...)
    call: SignalingCall
    incoming: bool
    peer: str
    connected: bool = False
    ended: bool = False  # callDisconnected was sent; the leg waits for callKill
    offers: Offers = field(default_factory=Offers)
    redirects: int = 0  # 3xx answers followed so far
    # An attended transfer in progress joins this call's peer to the peer of `joining`.
    joining: CallLeg | None = None


class PresenceDelivery(Protocol):
    """signalBind presence="yes": what publishes and watches presence (ximss/ops/presence.py)."""

    async def close(self) -> None: ...


@dataclass(eq=False)
class SignalBinding:
    agent: SignalingAgent
    address: str  # the user's SIP address of record
    capabilities: str | None = None  # the SDP the client bound with (kept, per the spec)
    calls: dict[str, CallLeg] = field(default_factory=dict)
    incoming_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    tasks: TaskSet = field(default_factory=lambda: TaskSet("signal"))
    # Call-IDs of our own INVITEs to the user's own address (makeCall): the proxy forks them to
    # this agent too, which must turn its copy down rather than ring the client.
    own_calls: set[str] = field(default_factory=set)
    # Closed first on close: it unsubscribes and unpublishes through the agent.
    presence: PresenceDelivery | None = None

    def leg(self, name: str) -> CallLeg:
        found = self.calls.get(name)
        if found is None:
            raise BridgeError(ErrorKind.NOT_FOUND, "unknown callLeg")
        return found

    def add(self, leg: CallLeg) -> None:
        if leg.leg in self.calls:
            raise BridgeError(ErrorKind.ALREADY_EXISTS, "the callLeg is in use")
        if len(self.calls) >= MAX_CALLS:
            raise BridgeError(ErrorKind.LIMIT, "too many calls")
        self.calls[leg.leg] = leg

    def new_incoming_name(self) -> str:
        while True:
            name = f"inp{next(self.incoming_numbers)}"
            if name not in self.calls:
                return name

    async def close(self) -> None:
        if self.presence is not None:
            presence, self.presence = self.presence, None
            await presence.close()
        self.calls.clear()
        await self.tasks.cancel_all()
        await self.agent.close()
