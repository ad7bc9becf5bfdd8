"""Preferences, account status and session options end to end on Dovecot (issue 6, items 2-4)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zoneinfo
from collections.abc import AsyncIterator

import pytest
from lxml import etree

from bridge import xml
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import BehindTheBack, ClientView, call, fields, index_range, message, uids

Client = tuple[XimssClient, devstack.Account]


async def connect(port: int, account: devstack.Account) -> XimssClient:
    client = await XimssClient.connect("127.0.0.1", port)
    await client.login(account.address, account.password)
    return client


@pytest.fixture
async def logged_in(bridge_port: int, stack: devstack.DevStack) -> AsyncIterator[Client]:
    account = stack.new_account("prefs")
    stack.fill_maildir(account.address, "INBOX", 3)
    client = await connect(bridge_port, account)
    yield client, account
    await client.close()


def new_settings(**values: str) -> etree._Element:
    settings = xml.element("newSettings")
    for name, value in values.items():
        xml.sub(settings, name, text=value)
    return settings


def names(*wanted: str) -> list[etree._Element]:
    return [xml.element("name", text=name) for name in wanted]


async def read_prefs(client: XimssClient, *wanted: str) -> dict[str, str]:
    reply = await call(client, "prefsRead", {}, *names(*wanted))
    (prefs,) = reply.of("prefs")
    return {child.tag: child.text or "" for child in prefs}


async def test_stored_time_zone_is_read_by_a_new_session(
    logged_in: Client, bridge_port: int
) -> None:
    client, account = logged_in
    defaults = await read_prefs(client)
    assert defaults == {
        "TimeZone": "UTC", "Language": "English", "DeleteMode": "Move To Trash",
        "TrashBox": "Trash", "SendMDNMode": "Manually",
    }  # fmt: skip
    await call(
        client, "prefsStore", {}, new_settings(TimeZone="Europe/Berlin", SendMDNMode="Never")
    )
    assert (await read_prefs(client, "TimeZone"))["TimeZone"] == "Europe/Berlin"
    other = await connect(bridge_port, account)
    try:
        got = await read_prefs(other, "TimeZone", "SendMDNMode", "NoSuchPref")
        assert got == {"TimeZone": "Europe/Berlin", "SendMDNMode": "Never"}
        # "default" removes the stored value: the config default applies again.
        await call(other, "prefsStore", {}, new_settings(SendMDNMode="default"))
        assert (await read_prefs(other, "SendMDNMode"))["SendMDNMode"] == "Manually"
    finally:
        await other.close()


@pytest.mark.parametrize(
    "bad",
    [{"TimeZone": "Mars/Olympus"}, {"TimeZone": "../../etc/passwd"}, {"DeleteMode": "Shred"},
     {"SendMDNMode": "Sometimes"}, {"TrashBox": ""}, {"NoSuchPref": "1"},
     {"TimeZone": "Asia/Tokyo", "DeleteMode": "bad"}],
)  # fmt: skip
async def test_bad_values_and_unknown_names_are_refused(
    logged_in: Client, bad: dict[str, str]
) -> None:
    client, _ = logged_in
    reply = await client.request("prefsStore", children=[new_settings(**bad)])
    assert reply.error_num == "501"
    # Nothing of a refused request is stored.
    assert (await read_prefs(client, "TimeZone"))["TimeZone"] == "UTC"


def local_times(reply: object) -> list[tuple[str, str]]:
    assert hasattr(reply, "of")
    found = []
    for report in reply.of("folderReport"):
        for name in ("INTERNALDATE", "Date"):
            cell = report.find(name)
            if cell is not None:
                found.append((cell.text or "", cell.get("localTime", "")))
    return found


async def test_dates_follow_the_stored_time_zone(logged_in: Client) -> None:
    client, _ = logged_in
    shown = {}
    for zone in ("Asia/Tokyo", "America/New_York"):
        await call(client, "prefsStore", {}, new_settings(TimeZone=zone))
        view = ClientView(client, f"f-{zone}")
        await view.open("INBOX", *fields("INTERNALDATE", "Date"))
        await view.browse_all()
        reply = await call(client, "folderBrowse", {"folder": view.folder}, index_range(0, 0))
        pairs = local_times(reply)
        assert len(pairs) == 2
        for gmt, local in pairs:
            moment = dt.datetime.strptime(gmt, "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
            expected = moment.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y%m%dT%H%M%S")
            assert local == expected
        shown[zone] = pairs
        now = await call(client, "readTime", {})
        (current,) = now.of("currentTime")
        gmt_now = dt.datetime.strptime(current.get("gmtTime", ""), "%Y%m%dT%H%M%S")
        local_now = dt.datetime.strptime(current.get("localTime", ""), "%Y%m%dT%H%M%S")
        offset = zoneinfo.ZoneInfo(zone).utcoffset(dt.datetime.now())
        assert local_now - gmt_now == offset
    assert shown["Asia/Tokyo"] != shown["America/New_York"]


async def test_message_remove_follows_the_stored_delete_mode(
    logged_in: Client, stack: devstack.DevStack
) -> None:
    client, account = logged_in
    other = BehindTheBack(stack.ports.imap, account)
    await call(client, "prefsStore", {}, new_settings(DeleteMode="Mark"))
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("FLAGS"))
    await call(client, "messageRemove", {"folder": "INBOX"}, *uids(2))
    assert await other.run("INBOX", "uids") == [1, 2, 3]
    assert await other.run("INBOX", "sort", "(DATE)", "DELETED") == [2]
    await call(client, "prefsStore", {}, new_settings(DeleteMode="Immediately"))
    await call(client, "messageRemove", {"folder": "INBOX"}, *uids(3))
    assert await other.run("INBOX", "uids") == [1, 2]


async def test_read_status_reports_storage_and_previous_login(
    logged_in: Client, bridge_port: int, stack: devstack.DevStack
) -> None:
    client, account = logged_in
    (status,) = (await call(client, "readStatus", {})).of("currentStatus")
    store = status.find("messageStore")
    assert store is not None
    used = int(store.get("used", "-1"))
    # The dev stack's quota_rule is storage=1G; STORAGE is in KiB, the spec's units are bytes.
    assert store.get("limit") == str(1 << 30)
    assert used > 0
    big = message("big", body="x" * 200_000)
    await BehindTheBack(stack.ports.imap, account).run("INBOX", "append", "INBOX", big)
    (status,) = (await call(client, "readStatus", {})).of("currentStatus")
    store = status.find("messageStore")
    assert store is not None and int(store.get("used", "-1")) >= used + 190_000
    # A per-user limit (a userdb field in the account's passwd-file) applies from the next
    # IMAP login on: a new session shows it, in bytes (Dovecot counts KiB).
    await asyncio.to_thread(stack.set_quota, account.address, 5 << 20)
    limited = await connect(bridge_port, account)
    try:
        (limited_status,) = (await call(limited, "readStatus", {})).of("currentStatus")
        store = limited_status.find("messageStore")
        assert store is not None and store.get("limit") == str(5 << 20)
    finally:
        await limited.close()
    # The first login has no predecessor; the second sees the first.
    assert status.find("PrevLogin") is None
    await call(client, "prefsStore", {}, new_settings(TimeZone="Asia/Tokyo"))
    second = await connect(bridge_port, account)
    try:
        (status,) = (await call(second, "readStatus", {})).of("currentStatus")
        prev = status.find("PrevLogin")
        assert prev is not None and prev.get("ip") == "127.0.0.1"
        gmt = dt.datetime.strptime(prev.get("gmtTime", ""), "%Y%m%dT%H%M%S")
        local = dt.datetime.strptime(prev.get("localTime", ""), "%Y%m%dT%H%M%S")
        assert local - gmt == dt.timedelta(hours=9)
        assert abs(gmt.replace(tzinfo=dt.UTC).timestamp() - time.time()) < 120
    finally:
        await second.close()


async def test_idle_timeout_session_option_closes_the_connection_sooner(
    logged_in: Client,
) -> None:
    client, _ = logged_in
    bad = await client.request("setSessionOption", {"name": "idleTimeout", "value": "soon"})
    assert bad.error_num == "501"
    unknown = await client.request("setSessionOption", {"name": "colour", "value": "blue"})
    assert unknown.error_num is not None
    await call(client, "setSessionOption", {"name": "reportMailboxChanges", "value": "yes"})
    await call(client, "setClientName", {"name": "prefs-test/1.0"})
    await call(client, "setSessionOption", {"name": "idleTimeout", "value": "1"})
    started = time.monotonic()
    await asyncio.wait_for(client.closed.wait(), 10)
    assert 0.5 < time.monotonic() - started < 5


async def test_read_status_reports_the_last_failed_login_of_known_accounts_only(
    bridge_port: int, stack: devstack.DevStack, bridge: Bridge
) -> None:
    account = stack.new_account("failed")
    first = await connect(bridge_port, account)  # the bridge now knows the account
    await first.close()
    started = time.time()
    for user, password in ((account.address, "not-the-password"), ("nobody-here", "guess")):
        client = await XimssClient.connect("127.0.0.1", bridge_port)
        try:
            refused = await client.request("login", {"authData": user, "password": password})
            assert refused.error_num == "535"
        finally:
            await client.close()
    client = await connect(bridge_port, account)
    try:
        (status,) = (await call(client, "readStatus", {})).of("currentStatus")
        failed = status.find("LastFailedLogin")
        assert failed is not None and failed.get("ip") == "127.0.0.1"
        gmt = dt.datetime.strptime(failed.get("gmtTime", ""), "%Y%m%dT%H%M%S")
        assert gmt.replace(tzinfo=dt.UTC).timestamp() >= int(started)
    finally:
        await client.close()
    # A name the bridge never saw log in leaves nothing behind in the state store.
    state = bridge.services.state
    assert await state.get("ximss:login-failed:nobody-here@example.test") is None
    assert await state.get(f"ximss:login-failed:{account.address}") is not None


async def test_report_mailbox_changes_sends_mailbox_messages_for_unopened_mailboxes(
    logged_in: Client, stack: devstack.DevStack
) -> None:
    client, account = logged_in
    other = BehindTheBack(stack.ports.imap, account)
    await call(client, "mailboxCreate", {"mailbox": "Reported"})
    view = ClientView(client, "inbox-view")
    await view.open("INBOX", sortField="UID")
    # The folder's watcher says "maybe changed" once as it starts; a sync re-arms the notify.
    assert (await client.unsolicited(5)).tag == "folderReport"
    await view.sync()
    await call(client, "setSessionOption", {"name": "reportMailboxChanges", "value": "yes"})
    await asyncio.sleep(0.3)  # the NOTIFY connection is set up in the background

    await other.run("INBOX", "append", "Reported", message("one for Reported"))
    seen = await client.unsolicited(5)
    assert seen.tag == "mailbox" and seen.get("id") is None
    assert seen.get("mailbox") == "Reported"
    assert (seen.get("MESSAGES"), seen.get("UNSEEN")) == ("1", "1")

    # The open folder's mailbox gets its folderReport notify, not a mailbox message.
    await other.run("INBOX", "append", "INBOX", message("one for INBOX"))
    seen = await client.unsolicited(5)
    assert seen.tag == "folderReport" and seen.get("mode") == "notify"
    await other.run("Reported", "store", "1", "+FLAGS", "(\\Seen)")
    seen = await client.unsolicited(5)
    assert (seen.tag, seen.get("mailbox"), seen.get("UNSEEN")) == ("mailbox", "Reported", "0")

    await call(client, "setSessionOption", {"name": "reportMailboxChanges", "value": "no"})
    await other.run("INBOX", "append", "Reported", message("unreported"))
    with pytest.raises(TimeoutError):
        await client.unsolicited(1.5)
