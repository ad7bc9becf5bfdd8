"""The operator's shell: type XIMSS XML, see every message the bridge sends back.

Each line read from standard input is sent as one message (a NUL is appended); everything the
bridge sends is printed as it arrives, one message per line, prefixed with `S:`.
"""

from __future__ import annotations

import asyncio
import sys

from bridge.ximss.framing import FrameDecoder, encode_frame

PROMPT = "C: "


async def run_shell(host: str, port: int) -> int:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        print(f"cannot connect to {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"connected to {host}:{port}; type XML requests, one per line; Ctrl-D ends", flush=True)

    async def printer() -> None:
        decoder = FrameDecoder(64 << 20)
        while chunk := await reader.read(65536):
            for frame in decoder.feed(chunk):
                print("S:", frame.decode("utf-8", "replace"), flush=True)
        print("connection closed by the bridge", flush=True)

    printing = asyncio.create_task(printer(), name="shell-printer")
    loop = asyncio.get_running_loop()
    try:
        while not printing.done():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            line = line.strip()
            if line:
                writer.write(encode_frame(line.encode("utf-8")))
                await writer.drain()
        # Give the last replies a moment to arrive before closing.
        await asyncio.wait({printing}, timeout=1.0)
    finally:
        printing.cancel()
        writer.close()
    return 0
