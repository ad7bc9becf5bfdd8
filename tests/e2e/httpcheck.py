"""curl, as the acceptance asks, and small helpers for the HTTP binding tests."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

URL_ID = re.compile(r'urlID="([^"]+)"')


@dataclass(frozen=True)
class CurlResult:
    status: int
    body: str


async def curl(*args: str, timeout: float = 30) -> CurlResult:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()
    body, _, status = out.decode().rpartition("\n")
    return CurlResult(int(status), body)


def url_id(body: str) -> str:
    match = URL_ID.search(body)
    assert match is not None, body
    return match.group(1)
