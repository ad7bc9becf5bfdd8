"""Path tricks: `../`, absolute paths, encoded slashes and NUL in upload names, in download URLs
(`/Session/<id>/MIME/../..`) and in XMAP file names. Nothing is written or read outside the
session's own spool and mailboxes: names are cut to their last part or refused, downloads of
such paths are 404 or 550, never a file of the host."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from yarl import URL

from bridge.app import Bridge
from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from tests.conftest import devstack
from tests.e2e.httpcheck import url_id

HOST_FILE = b"root:"  # the start of /etc/passwd


async def raw_get(port: int, path: bytes) -> tuple[int, bytes]:
    """A request line sent byte for byte (an HTTP client would normalise the path first)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read(-1)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        return status, answer
    finally:
        writer.close()


async def test_upload_and_download_paths(
    bridge: Bridge, http_url: str, fresh_account: devstack.Account, tmp_path: Path
) -> None:
    assert bridge.http is not None
    port = bridge.http.port
    target = tmp_path / "escaped"
    async with aiohttp.ClientSession() as http:
        query = {"userName": fresh_account.address, "password": fresh_account.password}
        async with http.get(f"{http_url}/XIMSSLogin/", params=query) as response:
            session_id = url_id(await response.text())
        session = bridge.services.sessions.get(session_id)
        assert session is not None
        names = [f"../../../..{target}", str(target), "..\\..\\evil.txt", "a/../../b", "..", "."]
        for index, name in enumerate(names):
            form = aiohttp.FormData()
            form.add_field("fileData", b"payload", filename=name, content_type="text/plain")
            async with http.post(f"{http_url}/Session/{session_id}/UPLOAD/u{index}",
                                 data=form) as response:  # fmt: skip
                assert response.status == 200, (name, await response.text())
            upload = session.uploads.get(f"u{index}")
            assert upload is not None
            assert "/" not in upload.file_name and upload.file_name not in ("..", ".")
            assert upload.path.resolve().parent != target.parent
        assert not target.exists()
        # Upload ids that look like paths.
        for upload_id in ("..", "../x", "%2e%2e%2fx", "x%00y"):
            form = aiohttp.FormData()
            form.add_field("fileData", b"payload", filename="f.txt")
            url = URL(f"{http_url}/Session/{session_id}/UPLOAD/{upload_id}", encoded=True)
            async with http.post(url, data=form) as response:
                # Refused, or normalised by the server into another session URL (a poll).
                assert response.status in (200, 400, 404, 550), upload_id
                assert b"<XIMSS" in await response.read() or response.status != 200
            # An id is a key (`..` is a valid one), never a path: the spool file is random.
            stored = session.uploads.get(upload_id)
            assert stored is None or stored.path.name.startswith("xb-upload-")
    # Downloads: the folder must be open in the session, the rest must be a message part.
    base = f"/Session/{session_id}/MIME".encode()
    for tail in (
        b"/../../../../etc/passwd", b"/..%2f..%2f..%2fetc%2fpasswd", b"/INBOX/../../etc/passwd",
        b"/%2e%2e/%2e%2e/etc/passwd", b"/INBOX/1-P.txt/../../../../../etc/passwd",
        b"//etc/passwd", b"/INBOX/1-P.txt%00.jpg",
    ):  # fmt: skip
        status, answer = await raw_get(port, base + tail)
        assert status in (400, 404, 550), (tail, answer[:200])
        assert HOST_FILE not in answer
    status, answer = await raw_get(port, b"/../../../../etc/passwd")
    assert status in (400, 404) and HOST_FILE not in answer


async def test_xmap_file_names(xmap_port: int, fresh_account: devstack.Account) -> None:
    client = await XmapClient.connect("127.0.0.1", xmap_port)
    try:
        await client.login(fresh_account.address, fresh_account.password)
        await client.call(c.CreateFolder("Docs"))
        for name in ("../evil.txt", "/etc/passwd", "Docs/../INBOX/evil.txt", "..", "Docs/..",
                     "Docs/a/../../b.txt", "Docs/\\..\\x"):  # fmt: skip
            answer = await client.call(c.NewFileUpload(name, "Docs", b"data"), check=False)
            if answer.error is None:
                # Stored: inside Docs, under a name with no path in it.
                stored = answer.first.get("Name") or ""
                assert stored.startswith("Docs/") and "/.." not in stored[5:], stored
            else:
                assert answer.error.get("Code") in ("501", "512"), (name, answer.error.attrib)
        for name in ("../../etc/passwd", "/etc/passwd", "Docs/../../etc/passwd", "..", "INBOX/.."):
            answer = await client.call(c.GetFile(name), check=False)
            assert answer.error is not None, name
            assert answer.blob is None or HOST_FILE not in answer.blob
        # NUL cannot be written in XML; a raw one in a frame is refused by the parser.
        await client.send_raw(b'<GETFILE Name="Docs/a\x01b"/>\0')
        answer = await client.receive()
        assert answer.error is not None and answer.error.get("Code") == "501"
        listed = await client.call(c.ListFolder("Docs"))
        names = [row.get("Name") or "" for row in listed.first]
        assert all(name.startswith("Docs/") and ".." not in name[5:].split("/") for name in names)
    finally:
        await client.close()
