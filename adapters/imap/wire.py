"""The IMAP wire layer, sans-IO: response parser and command encoder in one import.

Why a facade: the parser and the encoder change for different reasons and each stays a
small module (``wire_parse``, ``wire_encode``), while the asyncio client needs one place to
import the protocol vocabulary from. Nothing here touches sockets or asyncio.
"""

from .wire_encode import (
    Arg,
    Literal,
    Raw,
    encode_command,
    parse_sequence_set,
    quote,
    sequence_set,
)
from .wire_parse import ResponseParser
from .wire_types import (
    NIL,
    Atom,
    Continuation,
    ProtocolError,
    Response,
    ResponseCode,
    Tagged,
    Untagged,
    Value,
)

__all__ = [
    "NIL",
    "Arg",
    "Atom",
    "Continuation",
    "Literal",
    "ProtocolError",
    "Raw",
    "Response",
    "ResponseCode",
    "ResponseParser",
    "Tagged",
    "Untagged",
    "Value",
    "encode_command",
    "parse_sequence_set",
    "quote",
    "sequence_set",
]
