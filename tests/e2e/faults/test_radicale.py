"""Radicale killed (SIGKILL) and restarted under a session with an open calendar."""

from __future__ import annotations

import uuid

from bridge import xml
from bridge.app import Bridge
from bridge.client import Reply, XimssClient
from tests.conftest import devstack
from tests.e2e.faults import kit
from tests.e2e.faults.conftest import BACKEND_TIMEOUT, crashed, ximss
from tests.e2e.folderkit import call

RANGE = {"calendar": "Main", "timeFrom": "20250301T000000", "timeTill": "20250401T000000"}


def item(summary: str) -> object:
    return xml.parse(
        f'<iCalendar xmlns="urn:ietf:params:xml:ns:xcal"><vCalendar version="2.0"><vevent>'
        f"<uid>{uuid.uuid4()}@test</uid><dtstamp>20250101T000000Z</dtstamp>"
        f"<dtstart>20250310T100000Z</dtstart><duration>PT1H</duration>"
        f"<summary>{summary}</summary></vevent></vCalendar></iCalendar>".encode()
    )


async def _find(client: XimssClient) -> Reply:
    reply, _ = await kit.request(client, "findEvents", RANGE)
    return reply


async def _publish(client: XimssClient, summary: str) -> Reply:
    reply, _ = await kit.request(client, "calendarPublish",
                                 {"calendar": "Main", "sendRequests": "no"}, item(summary))  # fmt: skip
    return reply


def summaries(reply: Reply) -> list[str]:
    return sorted(e.findtext("summary") or "" for m in reply.of("events") for e in m.iter("event"))


async def test_calendar_operations_fail_clearly_then_work(
    fault_stack: devstack.DevStack, fault_bridge: Bridge
) -> None:
    account = fault_stack.new_account("cal")
    client = await ximss(fault_bridge, account)
    try:
        await call(client, "calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
        assert (await _publish(client, "before")).ok
        assert summaries(await _find(client)) == ["before"]
        with crashed(fault_stack.radicale):
            for attempt in (_find(client), _publish(client, "lost")):
                started = kit.time.monotonic()
                reply = await attempt
                assert kit.time.monotonic() - started < BACKEND_TIMEOUT + 1
                assert reply.error_num == "451", xml.serialize(reply.response)
        await kit.until_ok(lambda: _publish(client, "after"))
        assert summaries(await kit.until_ok(lambda: _find(client))) == ["after", "before"]
    finally:
        await client.close()
