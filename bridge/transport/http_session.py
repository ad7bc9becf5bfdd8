"""`/Session/<urlID>/...`: batches (sync, async), the long poll, KILL, uploads and downloads.

Every URL answers HTTP 550 when the session is unknown or has ended.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from aiohttp import BodyPartReader, web

from bridge import logs
from bridge.errors import BridgeError, ErrorKind
from bridge.session.session import Session
from bridge.session.uploads import Upload, discard_file
from bridge.transport import mime
from bridge.transport.http_binding import HttpBinding
from bridge.transport.http_common import HttpContext, read_body, session_gone, xml_response
from bridge.ximss.batch import parse_batch

log = logging.getLogger("bridge.http")

ACTIONS = ("", "get", "sync", "async", "kill", "upload", "mime")
UPLOAD_FIELD = "fileData"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_RAW = re.compile(r"^([0-9]{1,10})-P\.txt$")
_PART = re.compile(r"^([0-9]{1,10})-([0-9]{1,5}(?:[.-][0-9]{1,5}){0,19})-B$")
# Bytes read from IMAP per round trip while streaming a download.
DOWNLOAD_SLICE = 1 << 20


async def handle(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    if not rest:
        return session_gone()
    url_id, action = rest[0], (rest[1].lower() if len(rest) > 1 else "")
    cluster = ctx.services.cluster
    if cluster is not None and ctx.services.sessions.get(url_id) is None:
        return await cluster.forwarder.handle(request, url_id)  # another replica's, or gone
    if action in ("upload", "mime", "kill"):
        # These work for a session of any transport: the urlID is the session's HTTP handle.
        session = ctx.services.sessions.get(url_id)
        if session is None:
            return session_gone()
        logs.bind_session(session.url_id, session.account)
        if action == "upload":
            return await _upload(ctx, request, session, rest[2:])
        if action == "kill":
            await session.end()
            ctx.services.sessions.discard(session)
            return xml_response(None)
        return await _download(request, session, rest[2:])
    binding = ctx.state.get(url_id)
    if binding is None or action not in ACTIONS:
        return session_gone() if binding is None else web.Response(status=404, text="not found\n")
    binding.touch()
    logs.bind_session(binding.session.url_id, binding.session.account)
    if action in ("", "get"):
        return await _poll(ctx, request, binding)
    return await _batch(ctx, request, binding, background=action == "async")


async def _batch(
    ctx: HttpContext, request: web.Request, binding: HttpBinding, *, background: bool
) -> web.StreamResponse:
    settings = ctx.services.settings
    body = await read_body(request, settings.http.max_body_bytes, settings.http.read_timeout)
    batch = parse_batch(body, settings.limits.max_xml_depth)
    if background:
        binding.run_async(batch.requests, batch.error)
        return xml_response(None)
    messages = await binding.run_batch(batch.requests, batch.error)
    if binding.ended:
        await ctx.state.end(binding)  # a bye in the batch: answered here, then the session ends
    return xml_response(messages)


async def _poll(ctx: HttpContext, request: web.Request, binding: HttpBinding) -> web.Response:
    ack = _number(request.query.get("ackSeq"))
    wait = _number(request.query.get("maxWait"))
    max_wait = min(float(wait or 0), ctx.services.settings.http.max_poll_wait)
    binding.polling += 1
    try:
        reply = await binding.outbox.poll(ack, max_wait)
    finally:
        binding.polling -= 1
        binding.touch()
    if binding.ended and reply is None:
        return session_gone()
    if reply is None:
        return xml_response(None)
    return xml_response([reply.payload], resp_seq=reply.seq)


def _number(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return max(0, int(text))
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "not a number") from exc


async def _upload(
    ctx: HttpContext, request: web.Request, session: Session, rest: list[str]
) -> web.StreamResponse:
    """Multipart POST; the `fileData` part is streamed to disk within the upload limits."""
    if request.method != "POST" or not rest or not _UPLOAD_ID.match(rest[0]):
        raise BridgeError(ErrorKind.BAD_REQUEST, "POST a multipart body to UPLOAD/<uploadID>")
    upload_id = rest[0]
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "multipart/form-data expected") from exc
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == UPLOAD_FIELD:
            upload = await _spool(session, upload_id, part)
            session.uploads.commit(upload)
            return xml_response(None)
        await part.release()
    raise BridgeError(ErrorKind.BAD_REQUEST, f"no {UPLOAD_FIELD} part")


async def _spool(session: Session, upload_id: str, part: BodyPartReader) -> Upload:
    uploads = session.uploads
    spool = uploads.start()
    size = 0
    try:
        with spool:
            while chunk := await part.read_chunk(65536):
                size += len(chunk)
                uploads.check(size, replacing=upload_id)
                spool.write(chunk)
    except BaseException:
        discard_file(spool.name)
        raise
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    file_name = Path(part.filename or upload_id).name
    if file_name in ("", ".", ".."):  # a path with nothing of a name left in it
        file_name = upload_id
    return Upload(upload_id, file_name, content_type, size, Path(spool.name))


async def _download(request: web.Request, session: Session, rest: list[str]) -> web.StreamResponse:
    """MIME/<folder>/<UID>-P.txt: the message as stored; MIME/<folder>/<UID>-<part>-B/<name>:
    one part, decoded. Read from IMAP in slices and streamed, so size never becomes memory."""
    if len(rest) < 2:
        raise web.HTTPNotFound(text="not found\n")
    folder = session.folders.get(rest[0])
    if folder is None:
        raise web.HTTPNotFound(text="the folder is not open in this session\n")
    raw = _RAW.match(rest[1])
    part = _PART.match(rest[1])
    if raw is not None:
        uid, section = int(raw.group(1)), ""
        content_type, decoder = "text/plain", None
    elif part is not None:
        uid, section = int(part.group(1)), part.group(2).replace("-", ".")
        if uid not in folder.view:
            raise web.HTTPNotFound(text="no such message in this folder\n")
        head = await folder.mailbox.fetch_section(uid, f"{section}.MIME")
        if head is None:
            raise web.HTTPNotFound(text="no such message\n")
        content_type, decoder = mime.part_type(head)
    else:
        raise web.HTTPNotFound(text="not found\n")
    if uid not in folder.view:
        raise web.HTTPNotFound(text="no such message in this folder\n")
    response = web.StreamResponse(headers={"Content-Type": content_type,
                                           "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "private"})  # fmt: skip
    offset = 0
    stream = mime.Decoder(decoder)
    while True:
        chunk = await folder.mailbox.fetch_section(uid, section, offset, DOWNLOAD_SLICE)
        if chunk is None:
            if not response.prepared:
                raise web.HTTPNotFound(text="no such message\n")
            break
        if not response.prepared:
            await response.prepare(request)
        await response.write(stream.feed(chunk))
        offset += len(chunk)
        if len(chunk) < DOWNLOAD_SLICE:
            break
    if not response.prepared:
        await response.prepare(request)
    await response.write(stream.finish())
    await response.write_eof()
    return response
