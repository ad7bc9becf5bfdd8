"""What XMAP command handlers work with: the logged-in account's backends, and the Reply they
give back to the transport."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from adapters.protocols import MailSubmitter
from bridge.errors import BridgeError, ErrorKind
from bridge.session.handles import HandleStore, MessageRef
from bridge.session.session import Session
from bridge.xmap import responses
from bridge.xmap.pool import MailboxPool, Opened, mailbox_key


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: its XML, and for GETFILE/GETMESSAGE the blob and the blob's media type
    (the HTTP binding sends the blob as the body with that type)."""

    element: etree._Element
    blob: bytes | None = None
    content_type: str = "application/octet-stream"
    ack: responses.Ack | None = None  # what an acknowledgement says (a batch row reuses it)


def acked(ack: responses.Ack) -> Reply:
    return Reply(responses.ack(ack), ack=ack)


@dataclass(slots=True)
class Found:
    """A message located by its handle, in its open mailbox."""

    handle: int
    ref: MessageRef
    opened: Opened


class XmapAccount:
    def __init__(
        self, session: Session, handles: HandleStore, pool: MailboxPool, max_message_bytes: int
    ) -> None:
        self.session = session
        self.handles = handles
        self.pool = pool
        self.max_message_bytes = max_message_bytes

    @property
    def submitter(self) -> MailSubmitter:
        if self.session.submitter is None:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "sending mail is not available")
        return self.session.submitter

    async def find(self, handle: int) -> Found:
        """The message a handle names; NOT_FOUND with a clear text when it has gone."""
        ref = await self.handles.resolve(handle)
        if ref is None:
            raise BridgeError(ErrorKind.NOT_FOUND, f"no message has handle {handle}")
        opened = await self._open(handle, ref.mailbox)
        try:
            if await self._holds(opened, ref):
                return Found(handle, ref, opened)
            # Not there as this connection sees it. It may be behind (a message stored by
            # another connection since its SELECT), which status() cures (NOOP), or hold a
            # mailbox deleted and created again since (another UIDVALIDITY): open it afresh.
            status = await opened.mailbox.status()
            current = status.uidvalidity == opened.uidvalidity
        except BridgeError as exc:
            if exc.kind is not ErrorKind.BACKEND_UNAVAILABLE:
                raise
            current = False  # the connection was lost (the server ends it for a deleted mailbox)
        if not current:
            await self.pool.drop(ref.mailbox)
            opened = await self._open(handle, ref.mailbox)
        if await self._holds(opened, ref):
            return Found(handle, ref, opened)
        raise BridgeError(ErrorKind.NOT_FOUND, f"message {handle} no longer exists")

    async def _open(self, handle: int, mailbox: str) -> Opened:
        try:
            return await self.pool.get(mailbox)
        except BridgeError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                raise BridgeError(
                    ErrorKind.NOT_FOUND, f"the folder of message {handle} no longer exists"
                ) from exc
            raise

    @staticmethod
    async def _holds(opened: Opened, ref: MessageRef) -> bool:
        if opened.uidvalidity != ref.uidvalidity:
            return False
        return ref.uid in await opened.mailbox.summaries([ref.uid], [])

    def same_mailbox(self, a: str, b: str) -> bool:
        return mailbox_key(a) == mailbox_key(b)

    async def close(self) -> None:
        await self.pool.close()
