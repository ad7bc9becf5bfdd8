"""Provisioning end to end: signup, passwordModify and recoverPassword through the bridge into the
dev stack's Dovecot passwd-files, checked with IMAP and SMTP behind the bridge's back."""

from __future__ import annotations

import asyncio
import dataclasses
import grp
import imaplib
import secrets
import smtplib
import stat
import time
from collections.abc import AsyncIterator

import pytest

from bridge import config, xml
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import call
from tests.e2e.test_messages import email_xml, text_of, wait_for


def imap_login_works(port: int, address: str, password: str) -> bool:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(address, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        imap.shutdown()
    return True


async def imap_accepts(port: int, address: str, password: str) -> bool:
    return await asyncio.to_thread(imap_login_works, port, address, password)


async def ximss_login_works(bridge_port: int, address: str, password: str) -> bool:
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        reply = await client.request("login", {"authData": address, "password": password})
        return reply.ok
    finally:
        await client.close()


def new_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture
async def logged_in(
    bridge_port: int, stack: devstack.DevStack
) -> AsyncIterator[tuple[XimssClient, devstack.Account]]:
    account = stack.new_account("pwmod")
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    await client.login(account.address, account.password)
    yield client, account
    await client.close()


async def test_features_offer_signup(client: XimssClient) -> None:
    (features,) = (await client.call("listFeatures")).of("features")
    assert features.find("signup") is not None


async def test_signup_creates_an_account_that_logs_in(
    client: XimssClient, bridge_port: int, stack: devstack.DevStack
) -> None:
    name = new_name("signup")
    address = f"{name}@example.test"
    started = time.monotonic()
    await client.call("signup", {"userName": name, "password": "firstpw", "realName": "New One"})
    assert time.monotonic() - started >= 0.9  # the spec's delay
    path = stack.dovecot.users_path / "example.test" / name
    assert path.read_text() == f"{address}:{{PLAIN}}firstpw:::New One:::\n"
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_gid == grp.getgrnam("dovecot").gr_gid
    assert await imap_accepts(stack.ports.imap, address, "firstpw")
    # Not logged in by signup (spec): the connection is still before login.
    assert (await client.request("mailboxList")).error_num == "530"
    # The session shows the real name given at signup.
    assert (await client.login(address, "firstpw")).get("realName") == "New One"
    # The new account receives mail at once (Postfix looks recipients up in the passwd-files).
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp) as smtp:
        smtp.sendmail("someone@example.test", [address], f"Subject: welcome {name}\r\n\r\nhi\r\n")
    new_account = devstack.Account(address, "firstpw", "New One")
    assert (
        text_of(await wait_for(stack.ports.imap, new_account, "INBOX", f"welcome {name}")) == "hi\n"
    )


async def test_signup_of_an_existing_or_bad_name_is_refused(
    client: XimssClient, stack: devstack.DevStack
) -> None:
    existing = stack.new_account("taken")
    reply = await client.request("signup", {"userName": existing.address, "password": "other"})
    assert reply.error_num == "513"
    assert await imap_accepts(stack.ports.imap, existing.address, existing.password)
    for name in ("../escape", ".hidden", "a/b", "x:y"):
        reply = await client.request("signup", {"userName": name, "password": "pw"})
        assert reply.error_num == "501", name
    assert not (stack.dovecot.users_path / "escape").exists()
    reply = await client.request("signup", {"userName": new_name("nopw")})
    assert reply.error_num == "501"


async def test_password_modify_refreshes_the_sessions_credentials(
    logged_in: tuple[XimssClient, devstack.Account], bridge_port: int, stack: devstack.DevStack
) -> None:
    client, account = logged_in
    reply = await client.request("passwordModify", {"oldPassword": "wrong", "newPassword": "never"})
    assert reply.error_num == "535"
    assert await imap_accepts(stack.ports.imap, account.address, account.password)

    await call(client, "passwordModify",
               {"oldPassword": account.password, "newPassword": "changed-pw"})  # fmt: skip
    assert not await imap_accepts(stack.ports.imap, account.address, account.password)
    assert await imap_accepts(stack.ports.imap, account.address, "changed-pw")
    assert not await ximss_login_works(bridge_port, account.address, account.password)
    assert await ximss_login_works(bridge_port, account.address, "changed-pw")

    # The same session still submits: SMTP AUTH now uses the new password.
    tag = secrets.token_hex(4)
    body = email_xml(f"""<EMail>
      <From>{account.address}</From><Subject>After passwordModify {tag}</Subject>
      <To>{account.address}</To>
      <MIME type="text" subtype="plain">still sending</MIME>
    </EMail>""")
    await call(client, "messageSubmit", {}, body)
    # And opens folders: each opens its own IMAP connection, logged in with the new password.
    await call(client, "folderOpen", {"folder": "after", "mailbox": "INBOX"})
    changed = dataclasses.replace(account, password="changed-pw")
    got = await wait_for(stack.ports.imap, changed, "INBOX", f"After passwordModify {tag}")
    assert text_of(got).strip() == "still sending"


async def test_recover_password_mails_the_password(
    logged_in: tuple[XimssClient, devstack.Account],
    client: XimssClient,
    stack: devstack.DevStack,
) -> None:
    session, account = logged_in
    rescuer = stack.new_account("rescue")
    # Without a recovery address: refused, the same way as for an unknown account.
    missing = await client.request("recoverPassword", {"userName": account.address})
    unknown = await client.request("recoverPassword", {"userName": new_name("ghost")})
    assert missing.error_num == unknown.error_num == "512"
    assert missing.response.get("errorText") == unknown.response.get("errorText")

    await call(session, "passwordModify",
               {"oldPassword": account.password, "recoveryEMail": rescuer.address})  # fmt: skip
    started = time.monotonic()
    await client.call("recoverPassword", {"userName": account.address})
    assert time.monotonic() - started >= 0.9
    got = await wait_for(stack.ports.imap, rescuer, "INBOX", f"Password of {account.address}")
    assert f"Password: {account.password}" in text_of(got)
    assert got["Auto-Submitted"] == "auto-generated"


async def test_signup_with_a_recovery_address(
    client: XimssClient, stack: devstack.DevStack
) -> None:
    rescuer = stack.new_account("rescue")
    name = new_name("withrec")
    await client.call("signup", {"userName": name, "password": "pw-" + name,
                                 "recoverPassword": rescuer.address})  # fmt: skip
    await client.call("recoverPassword", {"userName": f"{name}@example.test"})
    got = await wait_for(stack.ports.imap, rescuer, "INBOX", f"Password of {name}@example.test")
    assert f"Password: pw-{name}" in text_of(got)


def _with_provisioning(
    settings: config.Settings, provisioning: config.ProvisioningSettings
) -> config.Settings:
    domain = dataclasses.replace(settings.domains["example.test"], provisioning=provisioning)
    http = dataclasses.replace(settings.http, enabled=False)
    return dataclasses.replace(settings, domains={"example.test": domain}, http=http)


async def test_without_a_provisioner_nothing_is_supported(
    settings: config.Settings, stack: devstack.DevStack
) -> None:
    account = stack.new_account("noprov")
    wanted = f"nosignup{secrets.token_hex(4)}"
    bare = _with_provisioning(settings, config.ProvisioningSettings())
    async with Bridge(bare) as running:
        assert running.tcp is not None
        client = await XimssClient.connect("127.0.0.1", running.tcp.port)
        try:
            (features,) = (await client.call("listFeatures")).of("features")
            assert features.find("signup") is None
            for tag, attrs in (("signup", {"userName": wanted, "password": "y"}),
                               ("recoverPassword", {"userName": account.address})):  # fmt: skip
                reply = await client.request(tag, attrs)
                assert reply.error_num == "502", xml.serialize(reply.response)
            await client.login(account.address, account.password)
            reply = await client.request(
                "passwordModify", {"oldPassword": account.password, "newPassword": "n"}
            )
            assert reply.error_num == "502"
        finally:
            await client.close()
    assert not (stack.dovecot.users_path / "example.test" / wanted).exists()


async def test_signup_can_be_turned_off(
    settings: config.Settings, stack: devstack.DevStack
) -> None:
    current = settings.domains["example.test"].provisioning
    closed = _with_provisioning(settings, dataclasses.replace(current, signup=False, delay=0.0))
    async with Bridge(closed) as running:
        assert running.tcp is not None
        client = await XimssClient.connect("127.0.0.1", running.tcp.port)
        try:
            (features,) = (await client.call("listFeatures")).of("features")
            assert features.find("signup") is None
            name = new_name("closed")
            reply = await client.request("signup", {"userName": name, "password": "pw"})
            assert reply.error_num == "502"
            assert not (stack.dovecot.users_path / "example.test" / name).exists()
        finally:
            await client.close()
