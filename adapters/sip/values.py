"""The values the user agent hands its owner, defined with the backend interfaces in
adapters/protocols.py and re-exported here for the SIP package's own imports."""

from adapters.protocols import (
    CallEvent,
    CallListener,
    CallState,
    Connected,
    Disconnected,
    Dtmf,
    Failed,
    IncomingMessage,
    InfoReceived,
    Notification,
    Provisional,
    RegistrationState,
    RegistrationStatus,
    RemoteUpdate,
    RequestResult,
    TransferProgress,
    TransferRequested,
)

__all__ = [
    "CallEvent",
    "CallListener",
    "CallState",
    "Connected",
    "Disconnected",
    "Dtmf",
    "Failed",
    "IncomingMessage",
    "InfoReceived",
    "Notification",
    "Provisional",
    "RegistrationState",
    "RegistrationStatus",
    "RemoteUpdate",
    "RequestResult",
    "TransferProgress",
    "TransferRequested",
]
