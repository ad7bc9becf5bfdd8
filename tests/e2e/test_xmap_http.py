"""XMAP over HTTP (`POST /XMAP`) end to end on the dev stack: Basic logins kept between requests,
both body forms, binary blobs both ways, error statuses and body limits."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from multidict import CIMultiDictProxy

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from bridge.session.session import Session
from tests.conftest import devstack
from tests.e2e.httpcheck import curl

CHALLENGE = 'Basic realm="XMAP", charset="UTF-8"'
XML_TYPE = "text/xml; charset=utf-8"
FIVE_MB = 5 * 1024 * 1024
MESSAGE = (
    b"From: Sender <sender@example.test>\r\n"
    b"To: rcpt@example.test\r\n"
    b"Subject: XMAP over HTTP\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <xmap-http-test.1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n" + b"A line of the body, the same each time.\r\n" * 2000
)


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def auth(account: devstack.Account, password: str | None = None) -> dict[str, str]:
    secret = account.password if password is None else password
    return {"Authorization": aiohttp.encode_basic_auth(account.address, secret)}


async def post(
    http: aiohttp.ClientSession, url: str, data: object, headers: dict[str, str] | None = None
) -> Answer:
    async with http.post(f"{url}/XMAP", data=data, headers=headers) as response:
        return Answer(response.status, response.headers, await response.read())


def binary(seed: int) -> bytes:
    """5 MB that a text-minded transport would break: zero bytes, CRLFs, a lookalike delimiter."""
    data = random.Random(seed).randbytes(FIVE_MB) + b"\r\n--\r\n\r\n\x00\x00\r\n"
    assert data.count(b"\x00") > 1000
    return data


def account_sessions(bridge: Bridge, account: devstack.Account) -> list[Session]:
    return [s for s in bridge.services.sessions.all() if s.account == account.address]


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One raw HTTP answer: its head and its Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    assert length is not None, head
    return head, await reader.readexactly(int(length.group(1)))


@asynccontextmanager
async def bridge_with(settings: config.Settings, **changes: object) -> AsyncIterator[Bridge]:
    """A bridge of its own with some settings replaced."""
    async with Bridge(dataclasses.replace(settings, **changes)) as running:  # type: ignore[arg-type]
        yield running


def base_url(bridge: Bridge) -> str:
    assert bridge.http is not None
    return f"http://127.0.0.1:{bridge.http.port}"


async def test_commands_answer_the_exact_xml(
    http_url: str, fresh_account: devstack.Account
) -> None:
    async with aiohttp.ClientSession() as http:
        created = await post(
            http, http_url, b'<CREATEFOLDER Name="Projects"/>', auth(fresh_account)
        )
        assert created.status == 200
        assert created.headers["Content-Type"] == XML_TYPE
        assert created.body == b'<XMAPROOT><CREATEFOLDER Name="Projects"/></XMAPROOT>'
        # The path matches case-insensitively; the response wrapper is accepted around a request.
        async with http.post(f"{http_url}/xmap", data=b"<XMAPROOT><LISTALLFOLDERS/></XMAPROOT>",
                             headers=auth(fresh_account)) as response:  # fmt: skip
            assert response.status == 200
            listed = await response.read()
        match = re.fullmatch(rb"<XMAPROOT><LISTALLFOLDERS>((?:<FOLDER Name=\"[^\"]+\"/>)+)"
                             rb"</LISTALLFOLDERS></XMAPROOT>", listed)  # fmt: skip
        assert match is not None, listed
        names = set(re.findall(rb'Name="([^"]+)"', match.group(1)))
        assert {b"INBOX", b"Projects"} <= names
        duplicate = await post(
            http, http_url, b'<CREATEFOLDER Name="Projects"/>', auth(fresh_account)
        )
        assert duplicate.status == 409
        assert b'<ERROR Command="CREATEFOLDER" Code="513"' in duplicate.body


async def test_credentials_missing_malformed_or_wrong(
    bridge: Bridge, http_url: str, fresh_account: devstack.Account
) -> None:
    async with aiohttp.ClientSession() as http:
        missing = await post(http, http_url, b"<LISTALLFOLDERS/>")
        assert missing.status == 401
        assert missing.headers["WWW-Authenticate"] == CHALLENGE
        assert missing.body == (
            b'<XMAPROOT><ERROR Command="" Code="530" Text="HTTP Basic credentials required"/>'
            b"</XMAPROOT>"
        )
        malformed = await post(http, http_url, b"<LISTALLFOLDERS/>",
                               {"Authorization": "Basic !!not-base64!!"})  # fmt: skip
        assert malformed.status == 401 and malformed.headers["WWW-Authenticate"] == CHALLENGE
        wrong = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account, "wrong"))
        assert wrong.status == 401
        assert wrong.headers["WWW-Authenticate"] == CHALLENGE
        assert b'Code="535"' in wrong.body
        assert account_sessions(bridge, fresh_account) == []  # a failed login is not kept
        # A kept login does not let a wrong password through.
        right = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert right.status == 200
        again_wrong = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account, "nope"))
        assert again_wrong.status == 401
        assert len(account_sessions(bridge, fresh_account)) == 1


async def test_method_path_and_login_command(
    http_url: str, fresh_account: devstack.Account
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{http_url}/XMAP", headers=auth(fresh_account)) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
        async with http.post(f"{http_url}/XMAP/more", data=b"<LISTALLFOLDERS/>",
                             headers=auth(fresh_account)) as response:  # fmt: skip
            assert response.status == 404
        login = await post(
            http, http_url, b'<LOGIN UserName="x" Password="y"/>', auth(fresh_account)
        )
        assert login.status == 501
        assert login.body == (
            b'<XMAPROOT><ERROR Command="LOGIN" Code="502" Text="use HTTP Basic"/></XMAPROOT>'
        )


async def test_file_round_trip_multipart_by_curl(
    http_url: str, fresh_account: devstack.Account, tmp_path: Path
) -> None:
    data = binary(1)
    command = tmp_path / "command.xml"
    command.write_bytes(
        b'<NEWFILEUPLOAD Name="data.bin" TargetFolder="INBOX"><?GOREALLYSLOW?></NEWFILEUPLOAD>'
    )
    blob = tmp_path / "data.bin"
    blob.write_bytes(data)
    uploaded = await curl("-u", f"{fresh_account.address}:{fresh_account.password}",
                          "-F", f"command=<{command};type=text/xml",
                          "-F", f"data=@{blob};type=application/octet-stream",
                          f"{http_url}/XMAP")  # fmt: skip
    assert uploaded.status == 200
    assert uploaded.body == '<XMAPROOT><NEWFILEUPLOAD Name="INBOX/data.bin"/></XMAPROOT>'
    async with aiohttp.ClientSession() as http:
        got = await post(http, http_url, b'<GETFILE Name="INBOX/data.bin"/>', auth(fresh_account))
    assert got.status == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["X-XMAP-Length"] == str(len(data))
    assert got.body == data


async def test_file_round_trip_xml_zero_byte_raw(
    http_url: str, fresh_account: devstack.Account
) -> None:
    data = binary(2)
    command = b'<NEWFILEUPLOAD Name="raw.bin" TargetFolder="INBOX"><?GOREALLYSLOW?></NEWFILEUPLOAD>'
    async with aiohttp.ClientSession() as http:
        uploaded = await post(http, http_url, command + b"\x00" + data, auth(fresh_account))
        assert uploaded.status == 200, uploaded.body
        assert uploaded.body == b'<XMAPROOT><NEWFILEUPLOAD Name="INBOX/raw.bin"/></XMAPROOT>'
        got = await post(http, http_url, b'<GETFILE Name="INBOX/raw.bin"/>', auth(fresh_account))
    assert got.status == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["X-XMAP-Length"] == str(len(data))
    assert got.body == data


async def test_message_upload_then_get(http_url: str, fresh_account: devstack.Account) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "command",
        b'<NEWMESSAGEUPLOAD TargetFolder="INBOX" MessageFlags="READ"><?GOREALLYSLOW?>'
        b"</NEWMESSAGEUPLOAD>",
        filename="command.xml",
        content_type="text/xml",
    )
    form.add_field("data", MESSAGE, filename="m.eml", content_type="message/rfc822")
    async with aiohttp.ClientSession() as http:
        uploaded = await post(http, http_url, form, auth(fresh_account))
        assert uploaded.status == 200, uploaded.body
        match = re.fullmatch(
            rb'<XMAPROOT><NEWMESSAGEUPLOAD MessageHandle="([0-9]+)"/></XMAPROOT>', uploaded.body
        )
        assert match is not None, uploaded.body
        handle = match.group(1)
        got = await post(http, http_url, b'<GETMESSAGE MessageHandle="' + handle + b'"/>',
                         auth(fresh_account))  # fmt: skip
    assert got.status == 200
    assert got.headers["Content-Type"] == "message/rfc822"
    assert got.headers["X-XMAP-Length"] == str(len(MESSAGE))
    assert got.body == MESSAGE


async def test_errors_have_http_statuses(http_url: str, fresh_account: devstack.Account) -> None:
    async with aiohttp.ClientSession() as http:
        unknown = await post(
            http, http_url, b'<GETFILE Name="INBOX/none.bin"/>', auth(fresh_account)
        )
        assert unknown.status == 404
        assert unknown.headers["Content-Type"] == XML_TYPE
        assert unknown.body == (
            b'<XMAPROOT><ERROR Command="GETFILE" Code="512" Text="no file INBOX/none.bin"/>'
            b"</XMAPROOT>"
        )
        announced = (
            b'<NEWFILEUPLOAD Name="x.bin" TargetFolder="INBOX"><?GOREALLYSLOW?></NEWFILEUPLOAD>'
        )
        no_blob = await post(http, http_url, announced, auth(fresh_account))
        assert no_blob.status == 400
        assert b'<ERROR Command="NEWFILEUPLOAD" Code="501"' in no_blob.body
        # The same command as the only part of a multipart body.
        form = aiohttp.FormData()
        form.add_field("command", announced, filename="c.xml", content_type="text/xml")
        one_part = await post(http, http_url, form, auth(fresh_account))
        assert one_part.status == 400
        assert b'<ERROR Command="NEWFILEUPLOAD" Code="501"' in one_part.body
        # Data after a command that takes none; a lone zero byte after the XML is fine.
        extra = await post(http, http_url, b"<LISTALLFOLDERS/>\x00data", auth(fresh_account))
        assert extra.status == 400
        assert b'<ERROR Command="LISTALLFOLDERS" Code="501"' in extra.body
        ended = await post(http, http_url, b"<LISTALLFOLDERS/>\x00", auth(fresh_account))
        assert ended.status == 200
        malformed = await post(http, http_url, b"<LISTFOLDER Name=", auth(fresh_account))
        assert malformed.status == 400
        assert b'<ERROR Command="LISTFOLDER" Code="501"' in malformed.body
        unknown_command = await post(http, http_url, b"<FROBNICATE/>", auth(fresh_account))
        assert unknown_command.status == 400
        assert b'<ERROR Command="FROBNICATE" Code="500"' in unknown_command.body
        # A batch whose item failed is a successful answer with an ERROR item.
        batch = await post(http, http_url,
                           b'<DELETEITEMS><DELETEFILE Name="INBOX/none.bin"/></DELETEITEMS>',
                           auth(fresh_account))  # fmt: skip
        assert batch.status == 200
        assert batch.body.startswith(b'<XMAPROOT><DELETEITEMS><ERROR Command="DELETEFILE"')
    # curl -f fails on an ERROR answer.
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-f", "-o", "/dev/null", "-u",
        f"{fresh_account.address}:{fresh_account.password}",
        "--data-binary", '<GETFILE Name="INBOX/none.bin"/>', f"{http_url}/XMAP",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await process.wait() == 22


async def test_content_length_over_limit_answers_before_the_body(
    bridge: Bridge, http_url: str, fresh_account: devstack.Account
) -> None:
    limits = bridge.settings.limits
    huge = limits.max_message_bytes + limits.max_frame_bytes + 1
    host, port = http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        # Only the head: a server that waited for the body would never answer.
        writer.write(
            b"POST /XMAP HTTP/1.1\r\nHost: bridge\r\nContent-Type: text/xml\r\n"
            + f"Authorization: {auth(fresh_account)['Authorization']}\r\n".encode()
            + f"Content-Length: {huge}\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(5):
            head, body = await read_answer(reader)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"\r\nConnection: close\r\n" in head
    assert body == (
        b'<XMAPROOT><ERROR Command="" Code="552" Text="request body too large"/></XMAPROOT>'
    )
    # Refused before any login.
    assert account_sessions(bridge, fresh_account) == []


async def test_login_is_kept_and_reused(
    bridge: Bridge, http_url: str, fresh_account: devstack.Account
) -> None:
    async with aiohttp.ClientSession() as http:
        first = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert first.status == 200
        sessions = account_sessions(bridge, fresh_account)
        assert [s.transport for s in sessions] == ["xmap-http"]
        kept = sessions[0]
        # Sequential and concurrent requests all run on that one login.
        second = await post(http, http_url, b'<LISTFOLDER Name="INBOX"/>', auth(fresh_account))
        assert second.status == 200
        together = await asyncio.gather(*(
            post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account)) for _ in range(5)
        ))  # fmt: skip
        assert [a.status for a in together] == [200] * 5
        assert account_sessions(bridge, fresh_account) == [kept]
        # Ended from outside (KILL, killOld, shutdown): dropped, and the next request logs in anew.
        await kept.end()
        assert kept.closed
        assert account_sessions(bridge, fresh_account) == []
        third = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert third.status == 200
        renewed = account_sessions(bridge, fresh_account)
        assert len(renewed) == 1 and renewed[0] is not kept


async def test_concurrent_first_logins_share_one(
    bridge: Bridge, http_url: str, fresh_account: devstack.Account
) -> None:
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*(
            post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account)) for _ in range(4)
        ))  # fmt: skip
    assert [a.status for a in answers] == [200] * 4
    assert len(account_sessions(bridge, fresh_account)) == 1


async def test_idle_login_is_closed_and_small_limits(
    settings: config.Settings, fresh_account: devstack.Account
) -> None:
    xmap = dataclasses.replace(settings.xmap, http_session_idle_timeout=0.5)
    limits = dataclasses.replace(settings.limits, max_message_bytes=1 << 20,
                                 max_frame_bytes=64 << 10)  # fmt: skip
    async with bridge_with(settings, xmap=xmap, limits=limits) as running:
        url = base_url(running)
        async with aiohttp.ClientSession() as http:
            answer = await post(http, url, b"<LISTALLFOLDERS/>", auth(fresh_account))
            assert answer.status == 200
            used = time.monotonic()
            sessions = account_sessions(running, fresh_account)
            assert len(sessions) == 1
            async with asyncio.timeout(5):
                while account_sessions(running, fresh_account):
                    await asyncio.sleep(0.05)
            assert time.monotonic() - used >= 0.5
            assert sessions[0].closed
            # The next request logs in again.
            again = await post(http, url, b"<LISTALLFOLDERS/>", auth(fresh_account))
            assert again.status == 200
            assert len(account_sessions(running, fresh_account)) == 1
            # An XML command over max_frame_bytes.
            padding = b" " * (64 << 10)
            big_xml = await post(http, url, b"<LISTALLFOLDERS" + padding + b"/>",
                                 auth(fresh_account))  # fmt: skip
            assert big_xml.status == 413
            assert b'Code="552"' in big_xml.body
        # A chunked body (no Content-Length) refused as soon as it passes the limit.
        await chunked_over_limit(url, fresh_account, (1 << 20) + (64 << 10) + 1)


async def chunked_over_limit(url: str, account: devstack.Account, size: int) -> None:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /XMAP HTTP/1.1\r\nHost: bridge\r\nContent-Type: text/xml\r\n"
            + f"Authorization: {auth(account)['Authorization']}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = 64 << 10
        sent = 0
        while sent < size:
            step = min(piece, size - sent)
            writer.write(f"{step:x}\r\n".encode() + b"<" * step + b"\r\n")
            sent += step
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            head, body = await read_answer(reader)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"request body too large" in body


async def test_switched_off_and_tls_required(
    settings: config.Settings, fresh_account: devstack.Account
) -> None:
    off = dataclasses.replace(settings.xmap, http=False)
    async with bridge_with(settings, xmap=off) as running, aiohttp.ClientSession() as http:
        answer = await post(http, base_url(running), b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert answer.status == 404
    strict = dataclasses.replace(settings.http, require_tls_for_clear_text=True)
    async with bridge_with(settings, http=strict) as running, aiohttp.ClientSession() as http:
        answer = await post(http, base_url(running), b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert answer.status == 403
        assert b'Code="550"' in answer.body
        assert account_sessions(running, fresh_account) == []


async def test_cross_site_requests_and_active_files(
    http_url: str, fresh_account: devstack.Account
) -> None:
    """A page of another origin cannot drive XMAP with the browser's kept Basic credentials, and
    a stored HTML file comes back as bytes to save, never as a page of the bridge's origin."""
    headers = auth(fresh_account)
    async with aiohttp.ClientSession() as http:
        foreign = {**headers, "Origin": "https://evil.example", "Content-Type": "text/plain"}
        refused = await post(http, http_url, b'<CREATEFOLDER Name="Evil"/>', foreign)
        assert refused.status == 403
        assert b'Code="550"' in refused.body
        listing = await post(http, http_url, b"<LISTALLFOLDERS/>", headers)
        assert b'"Evil"' not in listing.body
        same = {**headers, "Origin": http_url}
        made = await post(http, http_url, b'<CREATEFOLDER Name="Web"/>', same)
        assert made.status == 200, made.body
        page = b"<html><script>alert(1)</script></html>"
        upload = b'<NEWFILEUPLOAD Name="x.html" TargetFolder="Web"><?GOREALLYSLOW?></NEWFILEUPLOAD>'
        stored = await post(http, http_url, upload + b"\x00" + page, headers)
        assert stored.status == 200, stored.body
        got = await post(http, http_url, b'<GETFILE Name="Web/x.html"/>', headers)
        assert got.status == 200 and got.body == page
        assert got.headers["Content-Type"] == "application/octet-stream"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Security-Policy"] == "sandbox"


async def test_a_changed_password_ends_the_kept_login(
    http_url: str, bridge_port: int, fresh_account: devstack.Account
) -> None:
    """passwordModify gives every session of the account the new password, the kept XMAP login
    too; the old password must not keep opening it."""
    async with aiohttp.ClientSession() as http:
        kept = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert kept.status == 200
        client = await XimssClient.connect("127.0.0.1", bridge_port)
        try:
            await client.login(fresh_account.address, fresh_account.password)
            reply = await client.request(
                "passwordModify",
                {"oldPassword": fresh_account.password, "newPassword": "changed-pw"},
            )
            assert reply.ok, reply.error_num
        finally:
            await client.close()
        old = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account))
        assert old.status == 401 and b'Code="535"' in old.body
        new = await post(http, http_url, b"<LISTALLFOLDERS/>", auth(fresh_account, "changed-pw"))
        assert new.status == 200, new.body


async def test_a_wildcard_cors_setting_lets_no_page_use_credentials(
    settings: config.Settings, fresh_account: devstack.Account
) -> None:
    http_settings = dataclasses.replace(settings.http, cors_origins=("*",))
    async with bridge_with(settings, http=http_settings) as running:
        assert running.http is not None
        url = f"http://127.0.0.1:{running.http.port}"
        headers = {**auth(fresh_account), "Origin": "https://evil.example"}
        async with aiohttp.ClientSession() as http:
            refused = await post(http, url, b'<CREATEFOLDER Name="Evil"/>', headers)
        assert refused.status == 403
