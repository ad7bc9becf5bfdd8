"""No secret in the logs at any level (issue 11, part 5): a realistic run of every front end
against a bridge logging at DEBUG, in both log formats, then a grep of everything logged.

Secrets: passwords (right and wrong ones), urlIDs beyond their 6-digit head, Authorization
header values, message body text, the Redis password of the state store.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import io
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from bridge import config, logs
from bridge.app import Bridge
from bridge.client import XimssClient
from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from tests.conftest import devstack, redis_server_module
from tests.e2e.folderkit import call, request
from tests.e2e.hostile.kit import ports
from tests.e2e.httpcheck import url_id
from tests.e2e.test_messages import email_xml

TOKEN = secrets.token_hex(6)
PASSWORD = f"Pw{TOKEN}right"
WRONG = f"Pw{TOKEN}wrong"
REDIS_PASSWORD = f"Redis{TOKEN}"
BODY = f"BodyText{TOKEN}"  # in every message body sent


@dataclasses.dataclass
class Capture:
    text: io.StringIO = dataclasses.field(default_factory=io.StringIO)
    json: io.StringIO = dataclasses.field(default_factory=io.StringIO)

    def everything(self) -> str:
        return self.text.getvalue() + "\n" + self.json.getvalue()


@contextmanager
def capture_all_logs() -> Iterator[Capture]:
    """Every record of every logger at DEBUG, formatted as `log_format` text and json format
    it (the handlers `configure_logging` installs, writing to memory)."""
    captured = Capture()
    root = logging.getLogger()
    handlers = []
    for stream, formatter in ((captured.text, "text"), (captured.json, "json")):
        handler = logging.StreamHandler(stream)
        handler.addFilter(logs.ContextFilter())
        handler.setFormatter(logs.FORMATTERS[formatter]())
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
        root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.setLevel(level)
        for handler in handlers:
            root.removeHandler(handler)


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[redis_server_module.RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="xb-redis-secret-"))
    port = devstack.free_ports(1)[0]
    try:
        with redis_server_module.RedisServer(root, port, password=REDIS_PASSWORD) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def logged_bridge(
    settings: config.Settings, redis_with_password: redis_server_module.RedisServer
) -> AsyncIterator[tuple[Bridge, Capture]]:
    server = dataclasses.replace(settings.server, log_level="DEBUG", log_format="json")
    state = config.StateSettings(backend="redis", url=redis_with_password.url)
    with capture_all_logs() as captured:
        async with Bridge(dataclasses.replace(settings, server=server, state=state)) as running:
            yield running, captured


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def raw_message(sender: str, to: str, subject: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{BODY} xmap\r\n"
    ).encode()


async def ximss_tcp(port: int, user: devstack.Account) -> list[str]:
    client = await XimssClient.connect("127.0.0.1", port)
    try:
        assert (
            await client.request("login", {"authData": user.address, "password": WRONG})
        ).error_num
        session = await client.login(user.address, user.password)
        await call(client, "mailboxList", {})
        text = f"""<EMail><From>{user.address}</From><To>{user.address}</To>
            <Subject>logs</Subject><MIME type="text" subtype="plain">{BODY} append</MIME></EMail>"""
        await call(client, "messageAppend", {"targetMailbox": "INBOX"}, email_xml(text))
        await call(client, "folderOpen", {"folder": "INBOX", "mailbox": "INBOX"})
        browse = await call(client, "folderBrowse", {"folder": "INBOX"},
                            request("index", {"from": "0", "till": "10"}))  # fmt: skip
        for row in browse.of("folderReport"):
            await call(client, "folderRead", {"folder": "INBOX", "UID": row.get("UID") or ""})
        await call(client, "messageSubmit", {}, email_xml(text.replace("append", "submit")))
        await client.request("calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
        await client.request("setSessionOption", {"name": "clientName", "value": "secrets"})
        await client.request("bye")
        return [session.get("urlID") or ""]
    finally:
        await client.close()


async def http_binding(url: str, user: devstack.Account) -> list[str]:
    ids = []
    async with aiohttp.ClientSession() as http:
        wrong = {"userName": user.address, "password": WRONG}
        async with http.get(f"{url}/XIMSSLogin/", params=wrong) as response:
            assert response.status == 401
        right = {"userName": user.address, "password": user.password}
        async with http.get(f"{url}/XIMSSLogin/", params=right) as response:
            ids.append(url_id(await response.text()))
        async with http.get(f"{url}/XIMSSLogin/", headers=basic(user.address, user.password)
                            ) as response:  # fmt: skip
            ids.append(url_id(await response.text()))
        async with http.get(f"{url}/XIMSSLogin/", params={"sessionid": ids[0]}) as response:
            assert response.status == 200
        batch = b'<XIMSS><noop id="1"/><mailboxList id="2"/><bogus id="3"/></XIMSS>'
        for session in ids:
            async with http.post(f"{url}/Session/{session}/sync", data=batch) as response:
                assert response.status == 200
            async with http.get(f"{url}/Session/{session}/get?maxWait=0") as response:
                assert response.status == 200
            async with http.get(f"{url}/Session/{session}/MIME/1-P.txt") as response:
                pass
            async with http.get(f"{url}/Session/{session}/KILL") as response:
                assert response.status == 200
            async with http.get(f"{url}/Session/{session}/get") as response:
                assert response.status == 550
    return ids


async def xmap(port: int, url: str, user: devstack.Account) -> None:
    client = await XmapClient.connect("127.0.0.1", port)
    try:
        assert (await client.call(c.Login(user.address, WRONG), check=False)).error is not None
        await client.login(user.address, user.password)
        await client.call(c.ListAllFolders())
        await client.call(c.SendMail(None, "Sent", raw_message(user.address, user.address, "x")))
    finally:
        await client.close()
    async with aiohttp.ClientSession() as http:
        for password, status in ((WRONG, 401), (user.password, 200)):
            async with http.post(f"{url}/XMAP", data=b"<LISTALLFOLDERS/>",
                                 headers=basic(user.address, password)) as response:  # fmt: skip
                assert response.status == status


async def test_no_secret_in_any_log_line(
    logged_bridge: tuple[Bridge, Capture], stack: devstack.DevStack
) -> None:
    bridge, captured = logged_bridge
    user = stack.add_account(f"secrets{TOKEN}", PASSWORD, "Secret Tester")
    tcp_port, xmap_port, url = ports(bridge)
    ids = await ximss_tcp(tcp_port, user)
    ids += await http_binding(url, user)
    await xmap(xmap_port, url, user)
    await asyncio.sleep(0.5)  # background work (reports, pollers) logs too
    everything = captured.everything()
    assert "login account=" in everything  # the capture did see the bridge's lines
    assert captured.json.getvalue().lstrip().startswith("{")
    forbidden = {
        "password": PASSWORD,
        "wrong password": WRONG,
        "Redis password": REDIS_PASSWORD,
        "message body": BODY,
        "Basic credentials": aiohttp.encode_basic_auth(user.address, PASSWORD).split()[1],
        "wrong Basic credentials": aiohttp.encode_basic_auth(user.address, WRONG).split()[1],
    }
    for session in ids:
        assert session.count("-") == 1 and len(session.partition("-")[2]) >= 16
        forbidden[f"urlID {session[:6]}"] = session.partition("-")[2]
    leaks = [what for what, secret in forbidden.items() if secret in everything]
    assert not leaks, (leaks, everything[-4000:])


# --- every log call of the code base -------------------------------------------------------------

SOURCES = Path(__file__).resolve().parents[3]
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
SECRET_NAMES = {"url_id", "password", "new_password", "old_password", "authorization"}


def _leaking(node: ast.AST, protected: bool = False) -> list[str]:
    """Secret-named values among a log call's arguments, unless cut (`x[:6]`) or labelled
    (`session_label(x)`)."""
    if isinstance(node, ast.Subscript):
        protected = True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        protected = protected or name == "session_label"
    found = []
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    if isinstance(node, ast.Attribute | ast.Name) and name in SECRET_NAMES and not protected:
        found.append(str(name))
    for child in ast.iter_child_nodes(node):
        found += _leaking(child, protected)
    return found


def test_no_log_call_passes_a_secret_named_value() -> None:
    """A static guard for the paths the run above cannot reach (internal errors, failures of
    background work): log calls never take a urlID, password or Authorization value whole."""
    offenders = []
    for path in [
        *SOURCES.joinpath("bridge").rglob("*.py"),
        *SOURCES.joinpath("adapters").rglob("*.py"),
    ]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target = node.func.value
            if node.func.attr not in LOG_METHODS or getattr(target, "id", "") not in {
                "log",
                "logger",
                "logging",
            }:
                continue
            for argument in [*node.args[1:], *(keyword.value for keyword in node.keywords)]:
                for name in _leaking(argument):
                    offenders.append(f"{path.relative_to(SOURCES)}:{node.lineno} {name}")
    assert not offenders, offenders
