"""The development stack (deploy/devstack.py) against a real private Dovecot on loopback."""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEVSTACK_PY = REPO / "deploy" / "devstack.py"
sys.path.insert(0, str(DEVSTACK_PY.parent))

import devstack  # noqa: E402

USER1 = devstack.DEMO_ACCOUNTS[0]
USER2 = devstack.DEMO_ACCOUNTS[1]


@pytest.fixture(scope="module")
def stack() -> Iterator[devstack.DevStack]:
    """Our own stack, shadowing the session one: these tests change ACLs, folders, accounts."""
    root = devstack.make_temp_root()
    st = devstack.DevStack(root, devstack.free_stack_ports())
    try:
        st.start()
        yield st
    finally:
        st.stop()
        shutil.rmtree(root, ignore_errors=True)


def connect(st: devstack.DevStack, account: devstack.Account | None = None) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", st.ports.imap, timeout=10)
    if account is not None:
        imap.login(account.address, account.password)
    return imap


def ok(response: tuple[str, Any]) -> Any:
    """The data of an imaplib response that must be OK."""
    typ, data = response
    assert typ == "OK", data
    return data


def untagged(imap: imaplib.IMAP4, name: str) -> list[Any]:
    """Pop the untagged responses ``name`` (imaplib keeps them for us)."""
    _name, data = imap.response(name)
    return [d for d in data if d is not None]


def status_count(imap: imaplib.IMAP4, mailbox: str, item: str = "MESSAGES") -> int:
    data = ok(imap.status(mailbox, f"({item})"))
    match = re.search(rf"{item} (\d+)".encode(), data[0])
    assert match is not None, data
    return int(match.group(1))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_login_plain(stack: devstack.DevStack) -> None:
    imap = connect(stack)
    ok(imap.login(USER1.address, USER1.password))
    imap.logout()


def test_login_cram_md5(stack: devstack.DevStack) -> None:
    imap = connect(stack)
    assert "AUTH=CRAM-MD5" in imap.capabilities
    ok(imap.login_cram_md5(USER1.address, USER1.password))
    imap.logout()


def test_wrong_password_fails(stack: devstack.DevStack) -> None:
    imap = connect(stack)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login(USER1.address, "not-the-password")
    imap.logout()


def test_capabilities_after_login(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    caps = set(ok(imap.capability())[0].decode().upper().split())
    wanted = {
        "SORT",
        "ESORT",
        "CONDSTORE",
        "QRESYNC",
        "IDLE",
        "NOTIFY",
        "MOVE",
        "UIDPLUS",
        "SPECIAL-USE",
        "LIST-STATUS",
        "METADATA",
        "QUOTA",
        "ACL",
        "LITERAL+",
    }
    assert wanted <= caps, wanted - caps
    imap.logout()


def test_seeded_messages(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    assert int(ok(imap.select("INBOX", readonly=True))[0]) >= 3
    data = ok(imap.fetch("1:3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)] BODYSTRUCTURE)"))
    text = b"".join(part[1] if isinstance(part, tuple) else part for part in data).decode()
    assert "Welcome to example.test" in text
    assert "Quarterly figures" in text
    assert "<seed-report-user2@example.test>" in text
    assert '"figures.csv"' in text  # the attachment, from BODYSTRUCTURE
    imap.logout()

    imap = connect(stack, USER2)
    assert status_count(imap, "INBOX") >= 1
    imap.logout()


def test_special_use_mailboxes(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    lines = [d.decode() for d in ok(imap.list('""', "*")) if isinstance(d, bytes)]
    for name in ("Drafts", "Sent", "Trash", "Junk"):
        line = next(x for x in lines if x.endswith(f'"/" {name}'))
        assert f"\\{name}" in line, line
    imap.logout()


def test_metadata(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    ok(imap.xatom("SETMETADATA", "INBOX", '(/private/comment "devstack test")'))
    ok(imap.xatom("GETMETADATA", "INBOX", "/private/comment"))
    got = untagged(imap, "METADATA")
    assert any(isinstance(x, tuple) and x[1] == b"devstack test" for x in got), got
    # server annotation in the vendor tree
    ok(imap.xatom("SETMETADATA", '""', '(/private/vendor/ximss/prefs "v1")'))
    ok(imap.xatom("GETMETADATA", '""', "/private/vendor/ximss/prefs"))
    got = untagged(imap, "METADATA")
    assert any(isinstance(x, tuple) and x[1] == b"v1" for x in got), got
    imap.logout()


def test_acl_shared_mailbox(stack: devstack.DevStack) -> None:
    owner = connect(stack, USER2)
    ok(owner.xatom("SETACL", "INBOX", USER1.address, "lr"))
    owner.logout()

    viewer = connect(stack, USER1)
    names = [d.decode() for d in ok(viewer.list('""', "*")) if isinstance(d, bytes)]
    shared = f"shared/{USER2.address}/INBOX"
    assert any(n.endswith(f'"/" {shared}') for n in names), names
    assert int(ok(viewer.select(shared, readonly=True))[0]) >= 1
    data = ok(viewer.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert b"Hello from User One" in data[0][1]
    viewer.logout()


def test_quota(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    roots, quotas = ok(imap.getquotaroot("INBOX"))
    assert b"User quota" in roots[0]
    assert re.search(rb"STORAGE \d+ 1048576", quotas[0]), quotas
    imap.logout()


def test_fill_maildir_seen_by_status(stack: devstack.DevStack) -> None:
    imap = connect(stack, USER1)
    t0 = time.monotonic()
    stack.fill_maildir(USER1.address, "Big", 2000)
    assert time.monotonic() - t0 < 10
    assert status_count(imap, "Big") == 2000
    assert status_count(imap, "Big", "UNSEEN") == 1000

    # Message i has UID i+1, \Seen when i is even, \Flagged when i % 10 == 0.
    ok(imap.select("Big"))
    data = ok(
        imap.uid("FETCH", "1,2,2000", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    )
    heads: dict[int, tuple[bytes, bytes]] = {}
    for part in data:
        if isinstance(part, tuple):
            match = re.search(rb"UID (\d+)", part[0])
            assert match is not None
            heads[int(match.group(1))] = part
    assert b"\\Seen" in heads[1][0] and b"\\Flagged" in heads[1][0]
    assert b"\\Seen" not in heads[2][0] and b"\\Flagged" not in heads[2][0]
    assert b'"01-Jan-2024 00:00:00 +0000"' in heads[1][0]
    assert b"Subject: Message 0\r\n" in heads[1][1]
    assert b"Subject: Message 1999\r\n" in heads[2000][1]

    # Filling while the mailbox is selected: maildir_very_dirty_syncs still notices.
    stack.fill_maildir(USER1.address, "Big", 10)
    ok(imap.noop())
    assert status_count(imap, "Big") == 2010
    listing = ok(imap.list('""', "Big"))
    assert listing[0] is not None and listing[0].endswith(b'"/" Big')
    imap.logout()


def test_fill_maildir_hierarchy_and_unicode(stack: devstack.DevStack) -> None:
    stack.fill_maildir(USER1.address, "Archiv/Überweisungen", 3)
    imap = connect(stack, USER1)
    # imaplib does not encode modified UTF-7 itself
    assert status_count(imap, '"Archiv/&ANw-berweisungen"') == 3
    imap.logout()


def test_add_account_while_running(stack: devstack.DevStack) -> None:
    # a login right before, in the same second, must not hide the new user (passwd-file trap)
    connect(stack, USER1).logout()
    account = stack.new_account()
    imap = connect(stack, account)
    assert ok(imap.select("INBOX"))[0] == b"0"
    imap.logout()

    named = stack.add_account("carol", "carolpass", "Carol Example")
    assert named.address == "carol@example.test"
    connect(stack, named).logout()


def test_lmtp_delivery(stack: devstack.DevStack) -> None:
    account = stack.new_account("lmtp")
    message = (
        f"From: Someone <someone@example.org>\r\nTo: <{account.address}>\r\n"
        "Subject: via LMTP\r\nMessage-ID: <lmtp-1@example.org>\r\n\r\nhello\r\n"
    )
    with smtplib.LMTP("127.0.0.1", stack.ports.lmtp) as lmtp:
        refused = lmtp.sendmail("someone@example.org", [account.address], message)
    assert refused == {}
    imap = connect(stack, account)
    assert ok(imap.select("INBOX", readonly=True))[0] == b"1"
    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert b"via LMTP" in data[0][1]
    imap.logout()


def test_auth_listener_speaks_dovecot_auth(stack: devstack.DevStack) -> None:
    with socket.create_connection(("127.0.0.1", stack.ports.auth), timeout=5) as sock:
        sock.sendall(b"VERSION\t1\t2\nCPID\t4242\n")
        greeting = b""
        while b"DONE" not in greeting:
            chunk = sock.recv(4096)
            assert chunk, greeting
            greeting += chunk
    assert greeting.startswith(b"VERSION\t1\t")
    assert b"MECH\tCRAM-MD5" in greeting and b"MECH\tPLAIN" in greeting


def test_bridge_config_toml(stack: devstack.DevStack) -> None:
    conf = tomllib.loads(stack.bridge_config_toml(11024))
    assert conf["server"]["default_domain"] == "example.test"
    assert conf["tcp"] == {"host": "127.0.0.1", "port": 11024}
    assert conf["domains"]["example.test"]["imap"] == {
        "host": "127.0.0.1",
        "port": stack.ports.imap,
    }


def test_restart_same_root_keeps_seed_and_stops_cleanly() -> None:
    root = devstack.make_temp_root()
    st = devstack.DevStack(root, devstack.free_stack_ports())
    try:
        t0 = time.monotonic()
        st.start()
        assert time.monotonic() - t0 < 5
        first_pid = st.dovecot.pid
        assert first_pid is not None
        imap = connect(st, USER1)
        count = status_count(imap, "INBOX")
        imap.logout()
        st.stop()
        assert st.dovecot.pid is None
        assert not pid_alive(first_pid)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", st.ports.imap), timeout=1).close()

        st.start()
        imap = connect(st, USER1)
        assert status_count(imap, "INBOX") == count  # not seeded twice
        imap.logout()
    finally:
        st.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_cli_config() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(DEVSTACK_PY),
            "config",
            "--imap-port",
            "12345",
            "--listen-port",
            "11024",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    conf = tomllib.loads(out)
    assert conf["domains"]["example.test"]["imap"]["port"] == 12345
    assert conf["tcp"]["port"] == 11024


def test_cli_start_runs_until_sigterm() -> None:
    root = devstack.make_temp_root()
    imap_port, lmtp_port, auth_port, smtp_port, submission_port = devstack.free_ports(5)
    args = ["--root", str(root), "--imap-port", str(imap_port)]
    args += ["--lmtp-port", str(lmtp_port), "--auth-port", str(auth_port)]
    args += ["--smtp-port", str(smtp_port), "--submission-port", str(submission_port)]
    proc = subprocess.Popen(
        [sys.executable, str(DEVSTACK_PY), "start", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if "Ctrl-C" in line:
                break
        out = "".join(lines)
        assert f"127.0.0.1:{imap_port}" in out and "user1@example.test" in out
        master = int((root / "dovecot" / "run" / "master.pid").read_text())
        imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
        ok(imap.login(USER1.address, USER1.password))
        imap.logout()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not pid_alive(master)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # lets it stop the Dovecot it started
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)
