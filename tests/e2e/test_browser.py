"""The HTTP binding from a real browser: headless Chromium runs XMLHttpRequest against the bridge.

A page served by the test (its own loopback port, so a different origin from the bridge's) logs
in with GET /XIMSSLogin/, runs mailboxList through POST /Session/<urlID>/sync and writes the
mailbox names into the page. That is cross-origin, so it only works when the bridge's CORS
settings allow the page's origin; the negative test shows the same page failing against a bridge
that allows some other origin, so CORS, not luck, is what makes the positive case work.

Chromium is Debian's (`apt-get install chromium`, see deploy/setup.sh), driven by Playwright
with `executable_path`: Playwright's own downloaded browsers are never used.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from bridge import config
from bridge.app import Bridge

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # Loopback only on this machine: keep Chromium from trying to phone home while it runs.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
USER, PASSWORD = "user1@example.test", "user1pass"
# The page bounds every XHR at 10 s, so a hung request ends as an error text in the page; the
# test waits longer than that for the page to finish.
PAGE_WAIT_MS = 25_000

# Static: the bridge's base URL and the credentials come from the query string, so one page
# serves every bridge. It reports through <pre id="result">: JSON text, then data-state="done".
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>XIMSS over XHR</title></head>
<body><pre id="result"></pre>
<script>
"use strict";
const query = new URLSearchParams(location.search);
const base = query.get("bridge"), USER = query.get("user"), PASSWORD = query.get("password");

function request(method, url, body) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.timeout = 10000;
    // text/xml is not a CORS "simple" content type: the POST needs a preflight OPTIONS too.
    if (body !== null) xhr.setRequestHeader("Content-Type", "text/xml; charset=utf-8");
    xhr.onload = () => xhr.status === 200
      ? resolve(new DOMParser().parseFromString(xhr.responseText, "application/xml"))
      : reject(new Error(method + " " + url + ": HTTP " + xhr.status));
    // A CORS refusal is indistinguishable from a network error to the page, by design.
    xhr.onerror = () => reject(new Error(method + " " + url + ": network error, status " + xhr.status));
    xhr.ontimeout = () => reject(new Error(method + " " + url + ": timed out"));
    xhr.send(body);
  });
}

async function run() {
  const login = await request("GET", base + "/XIMSSLogin/?userName=" +
      encodeURIComponent(USER) + "&password=" + encodeURIComponent(PASSWORD), null);
  const session = login.querySelector("session");
  if (!session) throw new Error("login: no session element");
  const urlID = session.getAttribute("urlID");
  const reply = await request("POST", base + "/Session/" + encodeURIComponent(urlID) + "/sync",
      '<XIMSS><mailboxList id="1"/></XIMSS>');
  const response = reply.querySelector('response[id="1"]');
  if (!response || response.hasAttribute("errorText"))
    throw new Error("mailboxList: " + (response ? response.getAttribute("errorText") : "no response"));
  return {mailboxes: Array.from(reply.querySelectorAll("mailbox"), m => m.getAttribute("mailbox"))};
}

const out = document.getElementById("result");
run().then(
  result => { out.textContent = JSON.stringify(result); },
  error => { out.textContent = JSON.stringify({error: String(error.message || error)}); },
).finally(() => { out.dataset.state = "done"; });
</script></body></html>
"""


@pytest.fixture(scope="module")
async def page_origin() -> AsyncIterator[str]:
    """Serve the test page on its own free loopback port; yield that origin."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = int(runner.addresses[0][1])
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    # Playwright owns the Chromium process (it starts it with a pipe, not a port) and kills
    # the whole process tree in close(), even if the browser hangs.
    playwright = await async_playwright().start()
    try:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()
    finally:
        await playwright.stop()


@asynccontextmanager
async def bridge_allowing(settings: config.Settings, *origins: str) -> AsyncIterator[str]:
    """A bridge of its own whose CORS allows exactly `origins`; yield its HTTP base URL."""
    http = dataclasses.replace(settings.http, cors_origins=origins)
    async with Bridge(dataclasses.replace(settings, http=http)) as running:
        assert running.http is not None
        yield f"http://127.0.0.1:{running.http.port}"


async def run_page(browser: Browser, page_origin: str, bridge_url: str) -> tuple[Any, list[str]]:
    """Load the page against `bridge_url`; return its JSON result and Chromium's console lines."""
    # A fresh context per run: no cache (CORS preflights included) shared between bridges.
    context = await browser.new_context()
    try:
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        query = urlencode({"bridge": bridge_url, "user": USER, "password": PASSWORD})
        await page.goto(f"{page_origin}/?{query}")
        result = page.locator('#result[data-state="done"]')
        await result.wait_for(timeout=PAGE_WAIT_MS)
        return json.loads(await result.text_content() or "null"), console
    finally:
        await context.close()


async def test_browser_lists_mailboxes_over_http_binding(
    browser: Browser, page_origin: str, settings: config.Settings
) -> None:
    async with bridge_allowing(settings, page_origin) as bridge_url:
        result, console = await run_page(browser, page_origin, bridge_url)
    assert "error" not in result, (result, console)
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= set(result["mailboxes"]), result


async def test_browser_is_refused_without_cors_for_its_origin(
    browser: Browser, page_origin: str, settings: config.Settings
) -> None:
    # CORS is on, just not for this page: the bridge answers, the browser withholds the answer.
    async with bridge_allowing(settings, "http://elsewhere.example") as bridge_url:
        result, console = await run_page(browser, page_origin, bridge_url)
    assert result == {
        "error": f"GET {bridge_url}/XIMSSLogin/?userName=user1%40example.test"
        f"&password={PASSWORD}: network error, status 0"
    }, result
    assert any("CORS policy" in line for line in console), console
