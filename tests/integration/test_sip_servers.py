"""The SIP side of the dev stack (deploy/sip_servers.py): a real private Kamailio and baresip.

The servers are started here on free loopback ports (never skipped). Registrations and
requests are checked with a tiny raw-socket user agent (``RawUA``, UDP or TCP: digest auth with
qop=auth, just enough SIP for REGISTER/MESSAGE/SUBSCRIBE/PUBLISH), calls with two baresip
far ends driven over ctrl_tcp. Each test uses its own users, added while Kamailio runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import os
import queue
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "example.test"


def _load_sip_servers() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "devstack_sip_servers", REPO / "deploy" / "sip_servers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sip = _load_sip_servers()
_names = itertools.count(1)


def new_user(kam: Any, prefix: str = "u") -> tuple[str, str]:
    """A fresh account on the running Kamailio: (user, password)."""
    user = f"{prefix}{next(_names)}x{secrets.token_hex(2)}"
    password = f"pw-{secrets.token_hex(4)}"
    kam.add_user(f"{user}@{DOMAIN}", password)
    return user, password


# --------------------------------------------------------------------------- raw SIP UA


@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1]) if self.first_line.startswith("SIP/2.0") else 0

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0") else self.first_line.split()[0]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        return cls(lines[0], headers, body)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_header(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    """Authorization value answering a Digest challenge (RFC 2617, MD5, qop=auth if offered)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.partition(" ")[2]))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    out = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        out += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
    out += f', response="{response}", algorithm=MD5'
    if "opaque" in params:
        out += f', opaque="{params["opaque"]}"'
    return out


class RawUA:
    """One socket speaking just enough SIP (non-INVITE transactions) for these tests.

    UDP, or TCP as a client only: one connection to the proxy and no listening socket, so
    requests for us can only come back over that connection. A reader thread answers every
    request reaching us with 200 (a relayed MESSAGE, a NOTIFY) and queues it; responses go to
    another queue for :meth:`request`.
    """

    def __init__(
        self,
        proxy_port: int,
        user: str,
        password: str,
        transport: str = "udp",
        advertised_port: int | None = None,
        domain: str = DOMAIN,
    ) -> None:
        self.proxy_port = proxy_port
        self.advertised_port = advertised_port
        self.domain = domain
        self.user = user
        self.password = password
        self.transport = transport
        self.cseq = 0
        if transport == "tcp":
            self.sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=3)
            self.sock.settimeout(None)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        self.requests: queue.Queue[SipMessage] = queue.Queue()
        self.responses: queue.Queue[SipMessage] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def port(self) -> int:
        """The port in our Via and Contact (the socket's, unless told otherwise)."""
        return self.advertised_port or self.sock.getsockname()[1]

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact(self) -> str:
        params = ";transport=tcp" if self.transport == "tcp" else ""
        return f"<sip:{self.user}@127.0.0.1:{self.port}{params}>"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(2)

    def _frames(self) -> Iterator[bytes]:
        if self.transport == "udp":
            while True:
                data, _ = self.sock.recvfrom(65535)
                yield data
        buf = b""
        while True:
            data = self.sock.recv(65535)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf.lstrip():
                buf = buf.lstrip()
                head, _, rest = buf.partition(b"\r\n\r\n")
                size = int(re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)[1])
                if len(rest) < size:
                    break
                yield head + b"\r\n\r\n" + rest[:size]
                buf = rest[size:]

    def _read(self) -> None:
        frames = self._frames()
        while True:
            try:
                data = next(frames)
            except (OSError, StopIteration):
                return
            if not data.strip():
                continue  # keep-alive
            msg = SipMessage.parse(data)
            if msg.method:
                if msg.method != "ACK":
                    self.reply(msg)
                self.requests.put(msg)
            else:
                self.responses.put(msg)

    def send_raw(self, text: str) -> None:
        if self.transport == "tcp":
            self.sock.sendall(text.encode())
        else:
            self.sock.sendto(text.encode(), ("127.0.0.1", self.proxy_port))

    def reply(self, req: SipMessage, status: int = 200, reason: str = "OK") -> None:
        """Answer a request that reached us (statelessly: copy Via/From/To/Call-ID/CSeq)."""
        lines = [f"SIP/2.0 {status} {reason}"]
        for k, v in req.headers:
            if k.lower() in ("via", "v", "record-route"):
                lines.append(f"{k}: {v}")
        to = req.header("To") or ""
        if ";tag=" not in to:
            to += f";tag={secrets.token_hex(4)}"
        lines += [
            f"From: {req.header('From')}",
            f"To: {to}",
            f"Call-ID: {req.header('Call-ID')}",
            f"CSeq: {req.header('CSeq')}",
            "Content-Length: 0",
            "",
            "",
        ]
        self.send_raw("\r\n".join(lines))

    def request(
        self,
        method: str,
        ruri: str,
        *,
        to: str | None = None,
        headers: tuple[str, ...] = (),
        body: str = "",
        password: str | None = None,
        timeout: float = 3.0,
    ) -> SipMessage:
        """Send a request and return its final response, answering one digest challenge."""
        call_id = f"{secrets.token_hex(8)}@raw"
        from_tag = secrets.token_hex(4)
        auth: str | None = None
        while True:
            self.cseq += 1
            lines = [
                f"{method} {ruri} SIP/2.0",
                f"Via: SIP/2.0/{self.transport.upper()} 127.0.0.1:{self.port}"
                f";branch=z9hG4bK{secrets.token_hex(8)};rport",
                "Max-Forwards: 70",
                f"From: <{self.aor}>;tag={from_tag}",
                f"To: <{to or ruri}>",
                f"Call-ID: {call_id}",
                f"CSeq: {self.cseq} {method}",
                f"Contact: {self.contact}",
                *headers,
            ]
            if auth:
                lines.append(auth)
            lines += [f"Content-Length: {len(body.encode())}", "", body]
            self.send_raw("\r\n".join(lines))
            deadline = time.monotonic() + timeout
            while True:
                msg = self.responses.get(timeout=max(0.01, deadline - time.monotonic()))
                if msg.header("Call-ID") == call_id and msg.status >= 200:
                    break
            if msg.status not in (401, 407) or auth is not None:
                return msg
            name = "WWW-Authenticate" if msg.status == 401 else "Proxy-Authenticate"
            answer = "Authorization" if msg.status == 401 else "Proxy-Authorization"
            challenge = msg.header(name)
            assert challenge, msg
            pw = self.password if password is None else password
            auth = f"{answer}: {digest_header(challenge, method, ruri, self.user, pw)}"

    def register(self, expires: int = 300, password: str | None = None) -> SipMessage:
        return self.request(
            "REGISTER",
            f"sip:{self.domain}",
            to=self.aor,
            headers=(f"Expires: {expires}",),
            password=password,
        )

    def message(self, to_user: str, text: str) -> SipMessage:
        """MESSAGE to ``to_user`` (a user of our domain, or user@domain)."""
        to = to_user if "@" in to_user else f"{to_user}@{self.domain}"
        return self.request(
            "MESSAGE",
            f"sip:{to}",
            headers=("Content-Type: text/plain",),
            body=text,
        )

    def wait_request(self, method: str, timeout: float = 3.0) -> SipMessage:
        """The next request of ``method`` that reached us (already answered 200)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.requests.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg.method == method:
                return msg


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sipstack-", dir="/tmp"))
    try:
        yield path
    finally:
        if not os.environ.get("SIPSTACK_KEEP"):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def kamailio(root: Path) -> Iterator[Any]:
    kam = sip.Kamailio(root / "kamailio", sip.free_port_run(1), {f"user1@{DOMAIN}": "user1pass"})
    try:
        kam.start()
        yield kam
    finally:
        kam.stop()


@pytest.fixture
def ua_factory(kamailio: Any) -> Iterator[Any]:
    made: list[RawUA] = []

    def make(
        user: str | None = None,
        password: str | None = None,
        transport: str = "udp",
        advertised_port: int | None = None,
    ) -> RawUA:
        if user is None:
            user, password = new_user(kamailio)
        port = kamailio.port
        ua = RawUA(port, user, password or "", transport, advertised_port)
        made.append(ua)
        return ua

    yield make
    for ua in made:
        ua.close()


@pytest.fixture
def baresips(root: Path, kamailio: Any) -> Iterator[Any]:
    started: list[Any] = []

    def make(name: str, answermode: str = "auto") -> Any:
        user, password = new_user(kamailio, name)
        registrar = f"127.0.0.1:{kamailio.port}"
        b = sip.Baresip(
            root,
            f"{name}{next(_names)}",
            sip.free_port_run(3),
            (user, password, DOMAIN, registrar),
            answermode=answermode,
        )
        started.append(b)
        b.start()
        return b

    try:
        yield make
    finally:
        for b in started:
            b.stop()


# --------------------------------------------------------------------------- tests


def test_kamailio_answers_options(kamailio: Any) -> None:
    answer = sip.sip_options(kamailio.port)
    assert answer is not None and answer.startswith(b"SIP/2.0 200")
    assert kamailio.aor("user1@example.test") == "sip:user1@example.test"


def test_register_with_digest(ua_factory: Any) -> None:
    ua = ua_factory("user1", "user1pass")
    ok = ua.register()
    assert ok.status == 200, ok.first_line
    assert any(ua.contact.strip("<>") in c for c in ok.all("Contact")), ok.headers

    bad = ua.register(password="wrong")
    assert bad.status in (401, 403), bad.first_line

    stranger = ua_factory("nobody", "whatever")
    assert stranger.register().status in (401, 403)


def test_add_user_while_running(kamailio: Any, ua_factory: Any) -> None:
    ua = ua_factory("late", "latepass")
    assert ua.register().status in (401, 403)
    kamailio.add_user("late@example.test", "latepass")
    assert ua.register().status == 200
    kamailio.add_user("late", "changed")
    assert ua.register().status in (401, 403)
    assert ua.register(password="changed").status == 200


def test_message_between_registered_users_and_404_when_not_registered(
    ua_factory: Any,
) -> None:
    alice, bob = ua_factory(), ua_factory()
    assert alice.register().status == 200

    # Requests from our users need credentials too (407 for anything but REGISTER).
    wrong = alice.request("MESSAGE", bob.aor, body="x", password="wrong")
    assert wrong.status == 407, wrong.first_line

    # bob exists but is not registered: no offline store
    assert alice.message(bob.user, "hello?").status == 404
    assert alice.message("no-such-user", "hello?").status == 404

    assert bob.register().status == 200
    assert alice.message(bob.user, "hello bob").status == 200
    got = bob.wait_request("MESSAGE")
    assert got.body == b"hello bob"
    assert alice.aor in (got.header("From") or "")


def test_domains_added_while_running(kamailio: Any) -> None:
    """Every domain with a subscriber is served; same user part, other domain, other AOR."""
    kamailio.add_user("zed@other.test", "zedpass")
    kamailio.add_user("zed@example.test", "zedpass2")
    other = RawUA(kamailio.port, "zed", "zedpass", domain="other.test")
    here = RawUA(kamailio.port, "zed", "zedpass2")
    try:
        assert other.register(password="zedpass2").status in (401, 403)  # realm other.test
        assert other.register().status == 200
        assert kamailio.is_registered("zed@other.test")
        assert not kamailio.is_registered("zed@example.test")
        assert here.register().status == 200
        assert here.message("zed@other.test", "cross-domain").status == 200
        assert other.wait_request("MESSAGE").body == b"cross-domain"
        assert here.message("nobody@third.test", "x").status == 404
    finally:
        other.close()
        here.close()


def test_tcp_client_without_listener_gets_requests_over_its_connection(
    kamailio: Any, ua_factory: Any
) -> None:
    user, password = new_user(kamailio)
    # Via and Contact name a port nobody listens on (as a UA that advertises its listening
    # port but connects from another): only the connection it opened reaches it.
    nowhere = sip.free_port_run(1)
    tcp = RawUA(kamailio.port, user, password, "tcp", nowhere)
    try:
        assert tcp.register().status == 200
        sender = ua_factory()
        assert sender.register().status == 200
        assert sender.message(tcp.user, "over your connection").status == 200
        assert tcp.wait_request("MESSAGE").body == b"over your connection"
        # and the other way round
        assert tcp.message(sender.user, "back").status == 200
        assert sender.wait_request("MESSAGE").body == b"back"
    finally:
        tcp.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_presence_publish_subscribe_notify(ua_factory: Any, transport: str) -> None:
    # On TCP the watcher advertises a port nobody listens on: NOTIFYs must come back over
    # its connection.
    nowhere = sip.free_port_run(1) if transport == "tcp" else None
    watcher = ua_factory(transport=transport, advertised_port=nowhere)
    presentity = ua_factory()
    assert watcher.register().status == 200
    target = presentity.aor
    sub = watcher.request(
        "SUBSCRIBE",
        target,
        headers=("Event: presence", "Accept: application/pidf+xml", "Expires: 120"),
    )
    assert sub.status in (200, 202), sub.first_line
    first = watcher.wait_request("NOTIFY")
    assert "active" in (first.header("Subscription-State") or "")

    pidf = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{target}">'
        '<tuple id="t1"><status><basic>open</basic></status><note>at my desk</note></tuple>'
        "</presence>"
    )
    pub = presentity.request(
        "PUBLISH",
        target,
        headers=("Event: presence", "Expires: 120", "Content-Type: application/pidf+xml"),
        body=pidf,
    )
    assert pub.status == 200, pub.first_line
    assert pub.header("SIP-ETag")
    notify = watcher.wait_request("NOTIFY")
    assert b"<basic>open</basic>" in notify.body
    assert b"at my desk" in notify.body


def test_baresip_call_through_kamailio(baresips: Any) -> None:
    a = baresips("calla")
    b = baresips("callb")
    a.wait_registered()
    b.wait_registered()

    a.dial(b.aor)
    # baresip 1.0 answers auto-answer calls without a CALL_INCOMING event.
    est_a = a.wait_event("CALL_ESTABLISHED")
    est_b = b.wait_event("CALL_ESTABLISHED", direction="incoming")
    assert est_b["peeruri"].startswith(a.aor)
    assert est_a["direction"] == "outgoing"
    assert "ESTABLISHED" in a.list_calls()

    a.hangup()
    a.wait_event("CALL_CLOSED")
    closed = b.wait_event("CALL_CLOSED")
    assert closed["id"] == est_b["id"]


def test_baresip_manual_answer(baresips: Any) -> None:
    a = baresips("mana")
    b = baresips("manb", answermode="manual")
    a.wait_registered()
    b.wait_registered()

    a.dial(b.aor)
    incoming = b.wait_event("CALL_INCOMING")
    assert incoming["peeruri"].startswith(a.aor)
    a.wait_event("CALL_RINGING")
    b.accept()
    b.wait_event("CALL_ESTABLISHED")
    a.wait_event("CALL_ESTABLISHED")
    b.hangup()
    a.wait_event("CALL_CLOSED")


def test_baresip_hold_and_transfer(baresips: Any, kamailio: Any) -> None:
    """re-INVITE and REFER/NOTIFY inside a dialog, loose-routed through Kamailio."""
    a, b, c = (baresips(n) for n in ("xfera", "xferb", "xferc"))
    for phone in (a, b, c):
        phone.wait_registered()
        assert kamailio.is_registered(phone.account.user)

    a.dial(b.aor)
    a.wait_event("CALL_ESTABLISHED")
    b.wait_event("CALL_ESTABLISHED")
    # Call-specific verbs (hold, resume, transfer, reinvite) exist only while a call is up.
    a.command("hold")
    b.wait_event("CALL_REMOTE_SDP")  # the re-INVITE's offer reached b
    a.command("resume")
    b.wait_event("CALL_REMOTE_SDP")

    # b transfers a to c: REFER from b to a in the dialog, a calls c, NOTIFY back to b.
    assert b.command("transfer", c.aor).ok
    assert a.wait_event("TRANSFER")["param"] == c.aor
    c.wait_event("CALL_ESTABLISHED", direction="incoming")
    a.wait_event("CALL_ESTABLISHED")
    assert b.wait_event("CALL_CLOSED")["param"] == "Call transfered"
    a.hangup()
    c.wait_event("CALL_CLOSED")


def test_baresip_reregisters_after_kamailio_restart(root: Path) -> None:
    kam = sip.Kamailio(root / "restart-baresip", sip.free_port_run(1), {"erin": "erinpass"})
    phone = sip.Baresip(
        root,
        "erin",
        sip.free_port_run(3),
        sip.BaresipAccount("erin", "erinpass", DOMAIN, f"127.0.0.1:{kam.port}"),
    )
    try:
        kam.start()
        phone.start()
        phone.wait_registered()
        assert kam.is_registered("erin")
        kam.restart()
        assert not kam.is_registered("erin")
        assert phone.registered()  # baresip does not know yet
        phone.reregister()
        assert kam.is_registered("erin@example.test")
    finally:
        phone.stop()
        kam.stop()


def test_restart_forgets_registrations(root: Path) -> None:
    kam = sip.Kamailio(root / "restart", sip.free_port_run(1), {"carol": "carolpass"})
    carol = dave = None
    try:
        kam.start()
        kam.add_user("dave", "davepass")
        carol = RawUA(kam.port, "carol", "carolpass")
        dave = RawUA(kam.port, "dave", "davepass")
        assert carol.register().status == 200
        assert dave.register().status == 200
        assert dave.message("carol", "before").status == 200
        carol.wait_request("MESSAGE")

        old_pid = kam.pid
        t0 = time.monotonic()
        kam.restart()
        assert time.monotonic() - t0 < 5
        assert kam.pid != old_pid

        # usrloc is in memory: carol is gone until she registers again; users stay (dave was
        # added while running).
        assert not kam.is_registered("carol")
        assert dave.message("carol", "lost").status == 404
        assert carol.register().status == 200
        assert dave.message("carol", "after").status == 200
        assert carol.wait_request("MESSAGE").body == b"after"
    finally:
        for ua in (carol, dave):
            if ua is not None:
                ua.close()
        kam.stop()
    assert sip._port_free(kam.port)


def test_start_refuses_a_taken_port(root: Path) -> None:
    port = sip.free_port_run(1)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    try:
        kam = sip.Kamailio(root / "busy", port)
        with pytest.raises(RuntimeError, match="not free"):
            kam.start()
    finally:
        blocker.close()


def test_failed_start_says_why(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sip, "KAMAILIO_MODULES", Path("/nonexistent/modules"))
    kam = sip.Kamailio(root / "broken", sip.free_port_run(1))
    with pytest.raises(RuntimeError, match=r"(?s)kamailio exited.*nonexistent"):
        kam.start(timeout=5)
    assert kam.proc is None
