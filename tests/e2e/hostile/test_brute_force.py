"""Login brute force: after N wrong passwords for an account, or M from one address, within the
window, every login path refuses further logins before the mail server sees them (XIMSS 552 "too
many failed logins, try again in N s", HTTP 429 with Retry-After), the throttle metric counts
them, and the right password works again once the window has passed.

The bridge is one of its own with a short window, and each test logs in from its own loopback
address (127.0.0.x), so the counters of one test never reach another (or the shared bridge).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge import config
from bridge.app import Bridge
from bridge.client import Reply
from bridge.xmap import commands as c
from tests.conftest import devstack
from tests.e2e.hostile.kit import own_bridge, ports, sample, ximss_from, xmap_from

# Dovecot delays each wrong password by 2 s (auth_failure_delay): guesses run concurrently, and
# the window is long enough to hold them.
PER_ACCOUNT, PER_IP, WINDOW = 3, 6, 8.0
THROTTLED = "ximss_bridge_logins_throttled_total"
TOO_MANY = re.compile(r"^too many failed logins, try again in (\d+) s$")


@pytest.fixture(scope="module")
async def throttled(settings: config.Settings) -> AsyncIterator[Bridge]:
    limits = {
        "login_failures_per_account": PER_ACCOUNT,
        "login_failures_per_ip": PER_IP,
        "login_failure_window": WINDOW,
    }
    async with own_bridge(settings, limits=limits) as running:
        yield running


async def ximss_login(bridge: Bridge, source: str, user: str, password: str) -> Reply:
    client = await ximss_from(source, ports(bridge)[0])
    try:
        return await client.request("login", {"authData": user, "password": password})
    finally:
        await client.close()


def assert_throttled(reply: Reply) -> int:
    assert reply.error_num == "552", reply.response.attrib
    match = TOO_MANY.match(reply.response.get("errorText") or "")
    assert match is not None, reply.response.attrib
    wait = int(match.group(1))
    assert 1 <= wait <= WINDOW + 1
    return wait


async def test_per_account_lockout_then_the_window_passes(
    throttled: Bridge, stack: devstack.DevStack
) -> None:
    victim = stack.new_account("brute")
    source = "127.0.0.21"
    before = sample(THROTTLED, transport="tcp", scope="account")
    guesses = [
        ximss_login(throttled, source, victim.address, f"guess{i}") for i in range(PER_ACCOUNT)
    ]
    assert [reply.error_num for reply in await asyncio.gather(*guesses)] == ["535"] * PER_ACCOUNT
    # Even the right password is refused now, before Dovecot is asked (it would take 2 s to
    # refuse a wrong one, and it answers nothing here).
    started = time.monotonic()
    refused = await ximss_login(throttled, source, victim.address, victim.password)
    assert_throttled(refused)
    assert time.monotonic() - started < 1.5
    # Another address guessing the same account is refused too: the account is what is counted.
    elsewhere = await ximss_login(throttled, "127.0.0.22", victim.address, "guess")
    assert_throttled(elsewhere)
    assert sample(THROTTLED, transport="tcp", scope="account") == before + 2
    # Another account from the same address is not locked by this one.
    other = stack.new_account("bystander")
    assert (await ximss_login(throttled, source, other.address, other.password)).ok
    await asyncio.sleep(WINDOW + 0.2)
    assert (await ximss_login(throttled, source, victim.address, victim.password)).ok


async def test_a_success_clears_the_account_count(
    throttled: Bridge, stack: devstack.DevStack
) -> None:
    user = stack.new_account("forgetful")
    source = "127.0.0.23"
    for _ in range(2):  # 4 failures in all, more than PER_ACCOUNT, fewer than PER_IP
        typos = [ximss_login(throttled, source, user.address, "typo") for _ in range(2)]
        assert [reply.error_num for reply in await asyncio.gather(*typos)] == ["535", "535"]
        assert (await ximss_login(throttled, source, user.address, user.password)).ok


async def test_per_address_lockout_covers_every_login_path(
    throttled: Bridge, stack: devstack.DevStack
) -> None:
    source = "127.0.0.24"
    tcp_port, xmap_port, url = ports(throttled)
    before = sample(THROTTLED, transport="tcp", scope="ip")
    # A spray: one guess each on many accounts, never enough for any one of them.
    targets = [stack.new_account(f"spray{index}") for index in range(PER_IP)]
    spray = [ximss_login(throttled, source, target.address, "123456") for target in targets]
    assert [reply.error_num for reply in await asyncio.gather(*spray)] == ["535"] * PER_IP
    honest = stack.new_account("honest")
    assert_throttled(await ximss_login(throttled, source, honest.address, honest.password))
    assert sample(THROTTLED, transport="tcp", scope="ip") == before + 1
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        # The HTTP binding: 429 with Retry-After, the XML error as the body.
        query = {"userName": honest.address, "password": honest.password}
        async with http.get(f"{url}/XIMSSLogin/", params=query) as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= WINDOW + 1
            assert 'errorNum="552"' in await response.text()
        # XMAP over HTTP (Basic).
        basic = {"Authorization": aiohttp.encode_basic_auth(honest.address, honest.password)}
        async with http.post(f"{url}/XMAP", data=b"<LISTALLFOLDERS/>", headers=basic) as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= WINDOW + 1
            assert b'Code="552"' in await response.read()
    # XMAP over TCP.
    xmap = await xmap_from(source, xmap_port)
    try:
        answer = await xmap.call(c.Login(honest.address, honest.password), check=False)
        assert answer.error is not None and answer.error.get("Code") == "552"
        assert TOO_MANY.match(answer.error.get("Text") or "")
    finally:
        await xmap.close()
    # A CRAM-MD5 login gets no challenge from a throttled address.
    client = await ximss_from(source, tcp_port)
    try:
        cram = await client.request("login", {"method": "CRAM-MD5"})
        assert_throttled(cram)
    finally:
        await client.close()
    # Other addresses are not affected.
    assert (await ximss_login(throttled, "127.0.0.25", honest.address, honest.password)).ok
    await asyncio.sleep(WINDOW + 0.2)
    assert (await ximss_login(throttled, source, honest.address, honest.password)).ok


async def test_wrong_passwords_over_xmap_and_http_count_too(
    throttled: Bridge, stack: devstack.DevStack
) -> None:
    victim = stack.new_account("multipath")
    source = "127.0.0.26"
    _, xmap_port, url = ports(throttled)

    async def over_xmap() -> str | None:
        xmap = await xmap_from(source, xmap_port)
        try:
            answer = await xmap.call(c.Login(victim.address, "one"), check=False)
            return None if answer.error is None else answer.error.get("Code")
        finally:
            await xmap.close()

    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:

        async def over_xmap_http() -> int:
            basic = {"Authorization": aiohttp.encode_basic_auth(victim.address, "two")}
            async with http.post(f"{url}/XMAP", data=b"<LISTALLFOLDERS/>", headers=basic) as answer:
                return answer.status

        async def over_http(password: str) -> aiohttp.ClientResponse:
            query = {"userName": victim.address, "password": password}
            async with http.get(f"{url}/XIMSSLogin/", params=query) as response:
                await response.read()
                return response

        results = await asyncio.gather(over_xmap(), over_xmap_http(), over_http("three"))
        assert results[0] == "535" and results[1] == 401 and results[2].status == 401
        refused = await over_http(victim.password)
        assert refused.status == 429 and "Retry-After" in refused.headers
