"""`setSessionOption name="reportMailboxChanges" value="yes"`: changes in the user's mailboxes
that the session does not have open as folders are reported as `mailbox` data messages without
an id, in mailboxList's shape (MESSAGES, UIDNEXT, UNSEEN, INTERNALSIZE...), so a client keeps its
mailbox list's counters current without polling. Mailboxes open as folders get their
`folderReport mode="notify"` instead.

The backend reports which mailboxes changed (IMAP NOTIFY); each is then listed with its status,
one at a time, a mailbox already waiting not queued twice, so a burst of changes costs one
listing per mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bridge.errors import BridgeError
from bridge.transport.tasks import TaskSet
from bridge.ximss import codec
from bridge.ximss.ops.mailbox import mailbox_attributes

if TYPE_CHECKING:
    from bridge.session.session import Session
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss")


class MailboxReports:
    def __init__(self, conv: Conversation, session: Session) -> None:
        self._conv = conv
        self._session = session
        self._waiting: dict[str, None] = {}  # insertion-ordered set
        self._tasks = TaskSet(f"mailbox-reports {session.url_id}")
        self._stop: Callable[[], Awaitable[None]] | None = None
        self._running = False

    def start(self) -> None:
        """Raises NOT_SUPPORTED when the backend cannot report changes for this login."""
        if self._stop is None:
            self._stop = self._session.mail.watch_mailboxes(self.changed)

    async def stop(self) -> None:
        stop, self._stop = self._stop, None
        self._waiting.clear()
        await self._tasks.cancel_all()
        if stop is not None:
            await stop()

    @property
    def active(self) -> bool:
        return self._stop is not None

    def changed(self, name: str) -> None:
        if self._stop is None or self._session.closed or name in self._waiting:
            return
        if any(folder.mailbox.name == name for folder in self._session.folders.all()):
            return
        self._waiting[name] = None
        if not self._running:
            self._running = True
            self._tasks.spawn(self._report(), "report")

    async def _report(self) -> None:
        try:
            while self._waiting and not self._session.closed:
                # Taken off first: a change while it is listed queues it again.
                name = next(iter(self._waiting))
                del self._waiting[name]
                try:
                    infos = await self._session.mail.list_mailboxes(
                        name, with_status=True, with_class=True
                    )
                except BridgeError as exc:
                    log.info("session=%s mailbox report failed: %s", self._session.url_id[:6], exc)
                    continue
                for info in infos:
                    # A name holding LIST wildcards matches others too: only the mailbox itself.
                    if info.name == name:
                        message = codec.data("mailbox", None, mailbox_attributes(info))
                        self._conv.unsolicited(message)
        finally:
            self._running = False
