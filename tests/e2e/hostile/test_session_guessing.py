"""Session-id guessing on the HTTP binding: 1,000 random urlIDs of the right shape, on every
session URL kind, all answer 550 and none reaches a session; the guesses show in the HTTP
metric (status 550), and a live session next to them is untouched. A urlID carries about 143
random bits after its 6-digit head, so guessing is hopeless rather than throttled."""

from __future__ import annotations

import asyncio
import secrets
import string

import aiohttp

from tests.e2e.hostile.kit import sample
from tests.e2e.httpcheck import url_id

ALPHABET = string.ascii_letters + string.digits
GUESSES = 1_000
ACTIONS = ["", "get", "sync", "async", "KILL", "UPLOAD/x", "MIME/INBOX/1-P.txt"]
METRIC = "ximss_bridge_http_requests_total"


def guess(head: str | None = None) -> str:
    prefix = head or str(secrets.randbelow(900000) + 100000)
    return prefix + "-" + "".join(secrets.choice(ALPHABET) for _ in range(24))


async def test_a_thousand_guessed_url_ids_all_answer_550(http_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        query = {"userName": "user1@example.test", "password": "user1pass"}
        async with http.get(f"{http_url}/XIMSSLogin/", params=query) as response:
            real = url_id(await response.text())
        before = {
            action: sample(METRIC, endpoint=_endpoint(action), status="550") for action in ACTIONS
        }
        # Guesses that share the real session's 6-digit head (it shows in logs) too.
        ids = [guess(real[:6] if index % 10 == 0 else None) for index in range(GUESSES)]
        assert real not in ids
        semaphore = asyncio.Semaphore(50)

        async def attempt(index: int, candidate: str) -> int:
            action = ACTIONS[index % len(ACTIONS)]
            method = "POST" if action in ("sync", "async", "UPLOAD/x") else "GET"
            async with semaphore, http.request(
                method, f"{http_url}/Session/{candidate}/{action}",
                data=b'<XIMSS><noop id="1"/></XIMSS>' if method == "POST" else None,
            ) as response:  # fmt: skip
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(attempt(i, c) for i, c in enumerate(ids)))
        assert set(statuses) == {550}
        counted = sum(
            sample(METRIC, endpoint=_endpoint(action), status="550") - before[action]
            for action in ACTIONS
        )
        assert counted >= GUESSES
        # The real session never noticed.
        async with http.post(f"{http_url}/Session/{real}/sync",
                             data=b'<XIMSS><noop id="x"/></XIMSS>') as response:  # fmt: skip
            assert await response.read() == b'<XIMSS><response id="x"/></XIMSS>'
        # Revalidating a guessed id at the login URL fails the same way (and leaks nothing).
        async with http.get(f"{http_url}/XIMSSLogin/", params={"sessionid": guess(real[:6])}
                            ) as response:  # fmt: skip
            assert response.status == 401 and "urlID" not in await response.text()


def _endpoint(action: str) -> str:
    name = action.partition("/")[0].lower()
    return f"session/{name}" if name else "session"
