"""Conversation traces with no network: client XML in, server XML out, over in-memory backends."""

from __future__ import annotations

import base64
from collections.abc import Callable

from lxml import etree

from adapters.protocols import MailboxInfo, MailStore, OpenMailbox
from bridge import config
from bridge.errors import BridgeError, ErrorKind
from bridge.services import DomainServices, Services
from bridge.session.registry import SessionRegistry
from bridge.ximss import codec
from bridge.ximss.conversation import Conversation

SETTINGS = config.loads(
    """
[state]
path = ":memory:"
[domains."example.test".real_names]
alice = "Alice A."
"""
)


class MemoryStore:
    def __init__(self, account: str) -> None:
        self._account = account
        self.boxes: dict[str, str | None] = {"INBOX": None}
        self.closed = False
        self.alert: Callable[[str], None] | None = None

    @property
    def account(self) -> str:
        return self._account

    async def list_mailboxes(
        self, pattern: str, *, with_status: bool, with_class: bool
    ) -> list[MailboxInfo]:
        if pattern == "explode":
            raise RuntimeError("secret backend detail")
        return [
            MailboxInfo(name, True, False, cls, 1, 0, 1, 0, 0) for name, cls in self.boxes.items()
        ]

    async def create_mailbox(self, name: str, mailbox_class: str | None) -> None:
        if name in self.boxes:
            raise BridgeError(ErrorKind.ALREADY_EXISTS)
        self.boxes[name] = mailbox_class

    async def rename_mailbox(self, name: str, new_name: str, *, children: bool) -> None:
        self.boxes[new_name] = self.boxes.pop(name)

    async def delete_mailbox(self, name: str, *, children: bool) -> None:
        del self.boxes[name]

    async def list_subscriptions(self, pattern: str) -> list[str]:
        return []

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        return None

    def on_alert(self, handler: Callable[[str], None] | None) -> None:
        self.alert = handler

    async def open_mailbox(self, name: str) -> OpenMailbox:
        raise BridgeError(ErrorKind.NOT_FOUND)

    async def close(self) -> None:
        self.closed = True


class MemoryChallenge:
    def __init__(self) -> None:
        self.aborted = False

    async def challenge(self) -> bytes:
        return b"<1.2@example.test>"

    async def finish(self, response: bytes) -> MailStore:
        if not response.endswith(b" good"):
            raise BridgeError(ErrorKind.AUTH_FAILED)
        return MemoryStore(response.split()[0].decode())

    async def abort(self) -> None:
        self.aborted = True


class MemoryAuth:
    sasl_mechanisms = ("PLAIN", "CRAM-MD5")

    async def login(self, username: str, password: str, authzid: str = "") -> MailStore:
        if password != "secret":
            raise BridgeError(ErrorKind.AUTH_FAILED)
        return MemoryStore(username)

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def begin_sasl(self, mechanism: str) -> MemoryChallenge:
        return MemoryChallenge()


def make() -> tuple[Conversation, list[bytes]]:
    out: list[bytes] = []
    services = Services(
        SETTINGS,
        {
            "example.test": DomainServices(
                "example.test", SETTINGS.domains["example.test"], MemoryAuth()
            )
        },
        SessionRegistry(),
    )

    def sink(elem: etree._Element) -> None:
        out.append(codec.encode(elem))

    return Conversation(services, sink), out


async def run(conv: Conversation, *documents: str) -> None:
    for document in documents:
        await conv.handle(codec.decode(document.encode(), 64))


async def test_login_trace_with_real_name_and_bare_user() -> None:
    conv, out = make()
    await run(conv, '<login id="1" authData="Alice" password="secret"/>')
    assert out[0].startswith(b'<session id="1" urlID="')
    assert out[0].endswith(b' userName="alice@example.test" realName="Alice A."/>')
    assert out[1] == b'<response id="1"/>'
    assert conv.services.sessions.get(conv.require_session().url_id) is conv.session


async def test_second_login_is_refused() -> None:
    conv, out = make()
    await run(
        conv,
        '<login id="1" authData="alice" password="secret"/>',
        '<login id="2" authData="alice" password="secret"/>',
    )
    assert out[-1] == b'<response id="2" errorText="already logged in" errorNum="503"/>'


async def test_cram_md5_deferred_response() -> None:
    conv, out = make()
    await run(conv, '<login id="L" method="CRAM-MD5"/>')
    challenge = base64.b64encode(b"<1.2@example.test>").decode()
    assert out == [f'<challenge id="L" value="{challenge}"/>'.encode()]
    answer = base64.b64encode(b"bob good").decode()
    await run(conv, f'<auth id="L" value="{answer}"/>')
    assert b'userName="bob@example.test"' in out[1]
    assert out[2] == b'<response id="L"/>'


async def test_auth_without_login_and_bad_base64() -> None:
    conv, out = make()
    await run(conv, '<auth id="Z" value="eA=="/>', '<login id="P" method="PLAIN" authData="***"/>')
    assert (
        out[0] == b'<response id="Z" errorText="no login is waiting for this id" errorNum="501"/>'
    )
    assert out[1] == b'<response id="P" errorText="invalid base64 data" errorNum="501"/>'


async def test_unknown_domain_and_unsupported_method() -> None:
    conv, out = make()
    await run(
        conv,
        '<login id="1" domain="nowhere.test" authData="a" password="b"/>',
        '<login id="2" method="GSSAPI"/>',
    )
    assert out[0] == b'<response id="1" errorText="unknown domain" errorNum="517"/>'
    assert (
        out[1]
        == b'<response id="2" errorText="SASL method GSSAPI is not supported" errorNum="502"/>'
    )


async def test_unexpected_exception_is_an_internal_error_and_session_lives() -> None:
    conv, out = make()
    await run(conv, '<login id="1" authData="alice" password="secret"/>')
    out.clear()
    await run(conv, '<mailboxList id="2" filter="explode"/>', '<noop id="3"/>')
    assert out == [
        b'<response id="2" errorText="internal error" errorNum="554"/>',
        b'<response id="3"/>',
    ]


async def test_mailbox_list_data_before_response() -> None:
    conv, out = make()
    await run(conv, '<login id="1" authData="alice" password="secret"/>')
    out.clear()
    await run(conv, '<mailboxCreate id="c" mailbox="Notes" mailboxClass="IPF.StickyNote"/>')
    await run(conv, '<mailboxList id="l"/>')
    assert out[1:] == [
        b'<mailbox id="l" mailbox="INBOX" UIDVALIDITY="1" MESSAGES="0" UIDNEXT="1" UNSEEN="0" INTERNALSIZE="0"/>',
        b'<mailbox id="l" mailbox="Notes" UIDVALIDITY="1" MESSAGES="0" UIDNEXT="1" UNSEEN="0" INTERNALSIZE="0" CLASS="IPF.StickyNote"/>',
        b'<response id="l"/>',
    ]


async def test_close_ends_the_session() -> None:
    conv, _ = make()
    await run(conv, '<login id="1" authData="alice" password="secret"/>')
    session = conv.require_session()
    await conv.close()
    assert session.closed and conv.services.sessions.get(session.url_id) is None


async def test_backend_alert_becomes_unsolicited_alert() -> None:
    conv, out = make()
    await run(conv, '<login id="1" authData="alice" password="secret"/>')
    store = conv.require_session().mail
    assert isinstance(store, MemoryStore) and store.alert is not None
    store.alert("Mailbox is over quota")
    assert out[-1] == b"<alert>Mailbox is over quota</alert>"
    await conv.close()
    assert store.alert is None
