#!/usr/bin/env python3
"""Development stack: real mail backends as private instances on loopback.

Standard library only, so tests can load it by path without the bridge package::

    sys.path.insert(0, str(repo / "deploy"))
    import devstack

Today it runs Dovecot (IMAP, LMTP, auth for Postfix), Postfix (SMTP, submission with SASL
through Dovecot, delivery by LMTP to Dovecot), Radicale (CalDAV, caldav_server.py) and Kamailio
(SIP registrar, proxy and presence, sip_servers.py). Redis, for the replicated state, runs on
demand (redis_server.py; the tests start one for the run).
Everything lives below one scratch folder ("root"), no system configuration
(``/etc/dovecot``, ``/etc/postfix``) is read and the Debian system services are never touched.
Must run as root (Dovecot drops to the ``vmail`` user for mail access, Postfix to ``postfix``).

CLI::

    python deploy/devstack.py start [--root DIR] [--imap-port N] [--lmtp-port N] [--auth-port N]
                                    [--smtp-port N] [--submission-port N] [--recipients-port N]
    python deploy/devstack.py config [--imap-port N] [--submission-port N] [--listen-port N]
                                     [--http-port N]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import grp
import importlib.util
import itertools
import math
import os
import pwd
import re
import secrets
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Self

REPO = Path(__file__).resolve().parent.parent


def _load_sibling(name: str) -> ModuleType:
    """A module of deploy/ by path (tests load this file by path, without deploy/ on sys.path)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"devstack_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before running it: its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


caldav_server = _load_sibling("caldav_server")
sip_servers = _load_sibling("sip_servers")
DEFAULT_ROOT = REPO / ".devstack"
DEFAULT_DOMAIN = "example.test"
DOVECOT_BIN = "/usr/sbin/dovecot"
MAIL_USER = "vmail"
POSTFIX_USER = "postfix"  # mail_owner: the Debian package's user
SMTP_HOSTNAME = f"mail.{DEFAULT_DOMAIN}"
# Above the bridge's own limits.max_message_bytes (50 MiB), so the bridge's limit applies first.
POSTFIX_MESSAGE_SIZE_LIMIT = 64 << 20
# Unix socket paths are limited to 107 bytes; Dovecot's longest socket below base_dir
# ("login/imap-hibernate" and friends) needs about 25 of them.
_MAX_ROOT_LEN = 80


# --------------------------------------------------------------------------- ports


@dataclass
class Ports:
    """Loopback ports of the stack's servers."""

    imap: int
    lmtp: int
    auth: int  # Dovecot auth (client protocol) inet listener, for Postfix SASL
    smtp: int = 10026  # Postfix, port-25 style: our domains only, no AUTH
    submission: int = 10587  # Postfix, AUTH required (SASL through Dovecot)
    recipients: int = 10027  # the stack's own tcp_table: which addresses have a mailbox
    caldav: int = 5232  # Radicale
    sip: int = 15060  # Kamailio, UDP and TCP


DEFAULT_PORTS = Ports(
    imap=10143,
    lmtp=10024,
    auth=10025,
    smtp=10026,
    submission=10587,
    recipients=10027,
    caldav=5232,
    sip=15060,
)


def free_ports(n: int) -> list[int]:
    """Return ``n`` distinct currently free TCP ports on 127.0.0.1."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _check_ports_free(ports: Ports, names: Iterable[str] = ("imap", "lmtp", "auth")) -> None:
    """Fail clearly when a port is taken: else wait_ready() might greet another server."""
    for name in names:
        port = getattr(ports, name)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                s.bind(("127.0.0.1", port))
            except OSError as e:
                raise RuntimeError(f"{name} port 127.0.0.1:{port} is not free: {e}") from e


def free_stack_ports() -> Ports:
    """A :class:`Ports` with every port free (for tests)."""
    imap, lmtp, auth, smtp, submission, recipients, caldav = free_ports(7)
    return Ports(
        imap=imap,
        lmtp=lmtp,
        auth=auth,
        smtp=smtp,
        submission=submission,
        recipients=recipients,
        caldav=caldav,
        sip=sip_servers.free_port_run(1),  # free for UDP too
    )


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    address: str  # full address, also the IMAP login name
    password: str
    real_name: str
    quota: int | None = None  # storage limit in bytes; None: the stack's default (1 GiB)

    @property
    def local(self) -> str:
        return self.address.partition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.partition("@")[2]


DEMO_ACCOUNTS: tuple[Account, ...] = (
    Account("user1@example.test", "user1pass", "User One"),
    Account("user2@example.test", "user2pass", "User Two"),
)


def _make_account(name: str, password: str, real_name: str) -> Account:
    address = name if "@" in name else f"{name}@{DEFAULT_DOMAIN}"
    for value in (address, password, real_name):
        if any(c in value for c in ":\r\n\0"):
            raise ValueError(f"':' and line breaks are not allowed in account fields: {value!r}")
    local, _, domain = address.partition("@")
    if not local or not domain or "/" in address or address.startswith("."):
        raise ValueError(f"bad account address {address!r}")
    return Account(address.lower(), password, real_name)


# --------------------------------------------------------------------------- helpers


def _vmail_ids() -> tuple[int, int]:
    """uid/gid of the mail user, creating it when missing (Dovecot refuses uid 0 for mail)."""
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ],
            check=True,
        )
        pw = pwd.getpwnam(MAIL_USER)
    return pw.pw_uid, pw.pw_gid


def _check_traversable(path: Path) -> None:
    """Dovecot's mail processes run as vmail: every ancestor of the root must let others in.

    Trap: pytest's ``tmp_path`` lives below ``/tmp/pytest-of-root`` (mode 0700), so a stack
    rooted there starts fine but every login fails with "Permission denied".
    """
    for p in [path, *path.parents]:
        st = p.stat()
        if not st.st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{p} (mode {stat.S_IMODE(st.st_mode):o}) is not traversable by {MAIL_USER}; "
                "use a root below a world-searchable folder (e.g. tempfile.mkdtemp() + chmod 755)"
            )


def make_temp_root(prefix: str = "devstack-") -> Path:
    """A fresh scratch root below /tmp that the vmail user can traverse (for tests).

    Delete it with ``shutil.rmtree`` after :meth:`DevStack.stop`.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


def _mkdirs_owned(path: Path, uid: int, gid: int, mode: int = 0o700) -> None:
    """mkdir -p, chowning every folder it creates."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=mode)
        os.chown(d, uid, gid)


def _maildir_folder(home: Path, mailbox: str) -> Path:
    """Filesystem folder of an IMAP mailbox name in our Maildir++ layout.

    Namespace separator is "/", Maildir++ stores the hierarchy with "." on disk:
    "INBOX" -> home, "Big" -> home/.Big, "Work/2024" -> home/.Work.2024. Because "." is the
    on-disk hierarchy separator, Dovecot refuses mailbox names containing "." in this layout.
    """
    if mailbox.upper() == "INBOX":
        return home
    if "." in mailbox or mailbox.startswith("/") or mailbox.endswith("/") or "//" in mailbox:
        raise ValueError(f"mailbox name not representable in Maildir++: {mailbox!r}")
    if mailbox.upper().startswith("INBOX/"):
        raise ValueError("INBOX has no children in this layout")
    return home / ("." + _mutf7_encode(mailbox).replace("/", "."))


def _mutf7_encode(name: str) -> str:
    """IMAP modified UTF-7 (RFC 3501 5.1.3): how Dovecot 2.3 names folders on disk."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _ensure_maildir(folder: Path, uid: int, gid: int, *, is_inbox: bool) -> None:
    _mkdirs_owned(folder, uid, gid)
    for sub in ("cur", "new", "tmp"):
        _mkdirs_owned(folder / sub, uid, gid)
    if not is_inbox:
        marker = folder / "maildirfolder"
        if not marker.exists():
            marker.touch(0o600)
            os.chown(marker, uid, gid)


# --------------------------------------------------------------------------- seed messages


def _seed_messages() -> dict[str, list[tuple[str, str]]]:
    """(name, content) pairs per account; names are stable so seeding stays idempotent."""
    attachment = b"Quarter,Revenue,Cost\nQ1,120,80\nQ2,135,82\nQ3,150,90\nQ4,170,95\n"
    b64 = base64.encodebytes(attachment).decode("ascii")
    welcome = (
        "Return-Path: <admin@example.test>\n"
        "From: Example Admin <admin@example.test>\n"
        "To: User One <user1@example.test>\n"
        "Subject: Welcome to example.test\n"
        "Date: Mon, 06 Jan 2025 09:15:00 +0000\n"
        "Message-ID: <seed-welcome-user1@example.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Hello User One,\n"
        "\n"
        "your mailbox on example.test is ready. Café opens at 9.\n"
        "\n"
        "-- \n"
        "The admin\n"
    )
    report = (
        "Return-Path: <user2@example.test>\n"
        "From: User Two <user2@example.test>\n"
        "To: User One <user1@example.test>\n"
        "Cc: Example Admin <admin@example.test>\n"
        "Subject: Quarterly figures\n"
        "Date: Tue, 07 Jan 2025 14:02:31 +0100\n"
        "Message-ID: <seed-report-user2@example.test>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="=_devstack_boundary_1"\n'
        "\n"
        "This is a multi-part message in MIME format.\n"
        "\n"
        "--=_devstack_boundary_1\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Hi,\n"
        "\n"
        "attached are the figures for last year.\n"
        "\n"
        "Regards,\n"
        "User Two\n"
        "\n"
        "--=_devstack_boundary_1\n"
        'Content-Type: text/csv; name="figures.csv"\n'
        'Content-Disposition: attachment; filename="figures.csv"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n"
        f"{b64}"
        "--=_devstack_boundary_1--\n"
    )
    lunch = (
        "Return-Path: <user2@example.test>\n"
        "From: User Two <user2@example.test>\n"
        "To: User One <user1@example.test>\n"
        "Subject: Lunch on Friday?\n"
        "Date: Wed, 08 Jan 2025 11:45:10 +0100\n"
        "Message-ID: <seed-lunch-user2@example.test>\n"
        "In-Reply-To: <seed-welcome-user1@example.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Shall we try the new place around the corner?\n"
    )
    hello2 = (
        "Return-Path: <user1@example.test>\n"
        "From: User One <user1@example.test>\n"
        "To: User Two <user2@example.test>\n"
        "Subject: Hello from User One\n"
        "Date: Thu, 09 Jan 2025 08:30:00 +0000\n"
        "Message-ID: <seed-hello-user1@example.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Just checking that mail works.\n"
    )
    return {
        "user1@example.test": [
            ("1736154900.Mseed1P0.devstack", welcome),
            ("1736254951.Mseed2P0.devstack", report),
            ("1736333110.Mseed3P0.devstack", lunch),
        ],
        "user2@example.test": [("1736411400.Mseed1P0.devstack", hello2)],
    }


# --------------------------------------------------------------------------- Dovecot


# Dovecot's imap service runs one process per IMAP connection; a bridge session with a folder
# open holds about three. DevStack(imap_process_limit=...) raises it for load runs.
IMAP_PROCESS_LIMIT = 1024


def _dovecot_conf(
    root: Path, ports: Ports, uid: int, imap_process_limit: int = IMAP_PROCESS_LIMIT
) -> str:
    mail = root / "mail"
    # Every imap process also connects to the stats service, whose client_limit is
    # default_client_limit (1000): past it Dovecot logs "service(stats): client_limit (1000)
    # reached" and drops them (measured with 1,330 connections). So it grows with the limit.
    big = (
        f"default_client_limit = {imap_process_limit + 1000}\n"
        if imap_process_limit > IMAP_PROCESS_LIMIT
        else ""
    )
    return f"""\
# Generated by deploy/devstack.py -- private Dovecot instance, /etc/dovecot is not read.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = devstack-{ports.imap}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_verbose = yes
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_uid = {MAIL_USER}
mail_gid = {MAIL_USER}
{big}
# Users: full address as login name, {{PLAIN}} passwords so CRAM-MD5 works. One passwd-file
# per user. Trap: Dovecot re-stats a passwd-file at most once per second and reloads it only when
# its mtime (seconds) or size changed, so a user appended to a shared file right after a login is
# "unknown user" for up to a second. A new per-user path is read on first use: no delay.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {root}/users/%Ld/%Ln
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {root}/users/%Ld/%Ln
  default_fields = uid={MAIL_USER} gid={MAIL_USER} home={mail}/%Ld/%Ln
}}

# Maildir++ (folders ".Big", ".Work.2024"), home = maildir root.
mail_location = maildir:~
mail_home = {mail}/%Ld/%Ln
# Assume only Dovecot (and fill_maildir/seed, which only add files) touch the maildirs: avoids
# a 150-240 ms readdir of cur/ after each flag change on a 100k folder. Changed cur/ mtimes are
# still noticed, so files added from outside show up.
maildir_very_dirty_syncs = yes
# Scratch data: no fsync.
mail_fsync = never
mailbox_list_index = yes
mail_plugins = $mail_plugins acl quota

namespace inbox {{
  type = private
  inbox = yes
  prefix =
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}

# Other users' mailboxes shared with us (SETACL) appear as shared/<user>/<mailbox>. %%d/%%n
# are the owner's, the private index (\\Seen etc.) lives in the viewer's home.
# Trap: without mail_shared_explicit_inbox the owner's INBOX is listed as "shared/<user>" itself
# (selectable, \\HasNoChildren) and "shared/<user>/INBOX" never appears.
mail_shared_explicit_inbox = yes
namespace shared {{
  type = shared
  prefix = shared/%%u/
  separator = /
  location = maildir:{mail}/%%d/%%n:INDEXPVT=~/shared/%%u
  list = children
  subscriptions = no
}}

plugin {{
  acl = vfile
  # Trap: this dict is written by the imap processes (uid vmail); if vmail cannot write the
  # file *and its folder* (temp file + rename), shared mailboxes silently never list.
  acl_shared_dict = file:{root}/shared/shared-mailboxes.db
  # Without it Dovecot refuses SETACL for "anyone" and "authenticated" (BAD).
  acl_anyone = allow
  quota = maildir:User quota
  quota_rule = *:storage=1G
}}

imap_metadata = yes
mail_attribute_dict = file:%h/dovecot-attributes

protocol imap {{
  mail_plugins = $mail_plugins imap_acl imap_quota
  # tests open many connections as the same user from 127.0.0.1
  mail_max_userip_connections = 200
}}

protocol lmtp {{
  postmaster_address = postmaster@{DEFAULT_DOMAIN}
}}

# The compiled-in defaults define imap 143 and imaps 993: both must be overridden.
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {ports.imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
  # high-performance mode: one long-lived login process serves all connections (the default
  # one-process-per-connection mode caps at 100 concurrent logins).
  service_count = 0
  process_min_avail = 1
  client_limit = 1000
}}

service imap {{
  process_limit = {imap_process_limit}
  client_limit = 1
}}

service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {ports.lmtp}
  }}
}}

service auth {{
  # for Postfix: smtpd_sasl_type = dovecot, smtpd_sasl_path = inet:127.0.0.1:{ports.auth}
  inet_listener auth-inet {{
    address = 127.0.0.1
    port = {ports.auth}
  }}
}}
"""


class Dovecot(caldav_server.ManagedServer):
    """A private Dovecot instance below ``root`` (IMAP, LMTP, auth listener)."""

    def __init__(
        self,
        root: Path | str,
        ports: Ports,
        accounts: Iterable[Account] = DEMO_ACCOUNTS,
        *,
        imap_process_limit: int = IMAP_PROCESS_LIMIT,
    ) -> None:
        self.root = Path(root).resolve()
        self.ports = ports
        self.imap_process_limit = imap_process_limit
        self.accounts: dict[str, Account] = {a.address: a for a in accounts}
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- paths

    @property
    def conf_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def users_path(self) -> Path:
        return self.root / "users"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def home(self, user: str) -> Path:
        """Home (= Maildir++ root) of an account, given as full address or local part."""
        address = user if "@" in user else f"{user}@{DEFAULT_DOMAIN}"
        local, _, domain = address.lower().partition("@")
        return self.root / "mail" / domain / local

    # -- accounts

    def add_account(self, name: str, password: str, real_name: str = "") -> Account:
        """Add (or replace) an account; works before start and while running.

        ``name`` is a full address or a local part (domain example.test). A new account can log
        in at once; a changed password of an existing one takes up to a second to apply.
        """
        account = _make_account(name, password, real_name or name.partition("@")[0])
        with self._lock:
            self.accounts[account.address] = account
            if self.users_path.exists():
                self._write_user(account)
        return account

    def set_quota(self, user: str, limit: int | None) -> Account:
        """Give an account its own storage limit in bytes (None: the stack's default).

        Returns once IMAP logins see it: Dovecot re-reads a changed passwd-file on the first
        lookup in a new second of its clock, so this waits for the next whole second. Sessions
        logged in before keep the limit they started with.
        """
        address = user.lower() if "@" in user else f"{user.lower()}@{DEFAULT_DOMAIN}"
        with self._lock:
            account = replace(self.accounts[address], quota=limit)
            self.accounts[address] = account
            self._write_user(account)
        now = time.time()
        time.sleep(math.ceil(now) - now + 0.1)
        return account

    def _write_users(self) -> None:
        for account in self.accounts.values():
            self._write_user(account)

    def _write_user(self, account: Account) -> None:
        # passwd-file format: user:password:uid:gid:gecos:home:shell:extra_fields
        # A per-user limit is a userdb extra field; the "userdb_" prefix makes it one in both
        # the passdb and the userdb lookup of this file.
        extra = "" if account.quota is None else f"userdb_quota_rule=*:storage={account.quota}B"
        line = f"{account.address}:{{PLAIN}}{account.password}:::{account.real_name}:::{extra}\n"
        dovecot_gid = grp.getgrnam("dovecot").gr_gid  # the auth process runs as "dovecot"
        folder = self.users_path / account.domain
        if not folder.is_dir():
            folder.mkdir(parents=True, mode=0o750)
            os.chown(folder, 0, dovecot_gid)
        path = folder / account.local
        try:
            old = path.stat()
        except FileNotFoundError:
            old = None
        if old is not None and path.read_text(encoding="utf-8") == line:
            return
        tmp = folder / f".{account.local}.tmp"
        tmp.write_text(line, encoding="utf-8")
        os.chown(tmp, 0, dovecot_gid)
        tmp.chmod(0o640)
        if old is not None:
            # Changed password of a known user: Dovecot only reloads when mtime (in seconds) or
            # size differ, so force another mtime. Still takes up to 1 s to be seen.
            os.utime(tmp, (old.st_mtime - 1, old.st_mtime - 1))
        tmp.replace(path)

    # -- lifecycle

    def prepare(self) -> None:
        """Write config, users and folders (idempotent); done by :meth:`start`."""
        if len(str(self.root)) > _MAX_ROOT_LEN:
            raise RuntimeError(
                f"root {self.root} is too long for Dovecot's unix sockets (max {_MAX_ROOT_LEN})"
            )
        if os.geteuid() != 0:
            raise RuntimeError("the dev stack must run as root (Dovecot drops to vmail)")
        uid, gid = _vmail_ids()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        _check_traversable(self.root)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        _mkdirs_owned(self.root / "mail", uid, gid, 0o755)
        _mkdirs_owned(self.root / "shared", uid, gid, 0o755)
        self.conf_path.write_text(
            _dovecot_conf(self.root, self.ports, uid, self.imap_process_limit), encoding="utf-8"
        )
        dovecot_gid = grp.getgrnam("dovecot").gr_gid
        if self.users_path.is_file():
            self.users_path.unlink()
        self.users_path.mkdir(mode=0o750, exist_ok=True)
        os.chown(self.users_path, 0, dovecot_gid)
        with self._lock:
            # drop accounts a previous run of this root added
            for path in self.users_path.glob("*/*"):
                if f"{path.name}@{path.parent.name}" not in self.accounts:
                    path.unlink()
            self._write_users()

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        _check_ports_free(self.ports)
        # -F: stay in the foreground so the PID we hold is the master's.
        self.proc = caldav_server.launch(
            [DOVECOT_BIN, "-F", "-c", str(self.conf_path)], self.log_path
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll the IMAP port until the greeting arrives."""

        def greets() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.ports.imap), timeout=2) as s:
                    return s.recv(256).startswith(b"* OK")
            except OSError:
                return False

        caldav_server.wait_until_ready(self.proc, "dovecot", greets, timeout, self.log_tail, 0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the master we started and wait (it takes its children down)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            caldav_server.stop_process(proc, timeout)

    # -- content

    def seed(self) -> None:
        """Put the demo messages into user1's and user2's INBOX (once per root)."""
        uid, gid = _vmail_ids()
        stamp_dir = self.root / "seeded"
        stamp_dir.mkdir(exist_ok=True)
        for address, messages in _seed_messages().items():
            stamp = stamp_dir / address
            if stamp.exists() or address not in self.accounts:
                continue
            home = self.home(address)
            _ensure_maildir(home, uid, gid, is_inbox=True)
            for name, content in messages:
                tmp = home / "tmp" / name
                tmp.write_bytes(content.encode("utf-8"))
                os.chown(tmp, uid, gid)
                tmp.rename(home / "new" / name)
            stamp.touch()

    def fill_maildir(
        self, user: str, mailbox: str, count: int, *, start: int | None = None
    ) -> None:
        """Write ``count`` small messages straight into ``mailbox``'s Maildir cur/ folder.

        Message ``i`` (``start <= i < start + count``; ``start`` defaults to the number of
        messages already on disk) has Subject "Message i", From "sender<i % 100>@example.org",
        Message-ID "<fill-<i>@devstack>", INTERNALDATE and Date 2024-01-01T00:00Z + i minutes,
        flag \\Seen when ``i`` is even and \\Flagged when ``i % 10 == 0``. Filenames sort by
        ``i``, so new UIDs follow ``i``. The mailbox is created on disk when missing. Works
        while Dovecot runs (the changed cur/ mtime makes it rescan).
        """
        uid, gid = _vmail_ids()
        home = self.home(user)
        address = user if "@" in user else f"{user}@{DEFAULT_DOMAIN}"
        folder = _maildir_folder(home, mailbox)
        _ensure_maildir(home, uid, gid, is_inbox=True)
        _ensure_maildir(folder, uid, gid, is_inbox=folder == home)
        cur = folder / "cur"
        if start is None:
            start = sum(1 for _ in os.scandir(cur)) + sum(1 for _ in os.scandir(folder / "new"))
        tag = f"P{os.getpid()}Q{secrets.token_hex(4)}"
        dfd = os.open(cur, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # File creation is the cost (~40 us each); the syscalls release the GIL and a few
            # threads overlap them on ext4.
            workers = _FILL_WORKERS if count >= 4000 else 1
            step = -(-count // workers)
            bounds = [
                (lo, min(lo + step, start + count)) for lo in range(start, start + count, step)
            ]
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(
                        _write_fill_range,
                        dfd,
                        lo,
                        hi,
                        address=address,
                        mailbox=mailbox,
                        tag=tag,
                        uid=uid,
                        gid=gid,
                    )
                    for lo, hi in bounds
                ]
                for f in futures:
                    f.result()
        finally:
            os.close(dfd)
        # Touch cur/ so its mtime surely differs from what Dovecot's index recorded.
        os.utime(cur)


_FILL_BASE = 1704067200  # 2024-01-01T00:00:00Z
_FILL_WORKERS = max(2, min(4, os.cpu_count() or 1))
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc5322_date(ts: int) -> str:
    t = time.gmtime(ts)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def _write_fill_range(
    dfd: int, lo: int, hi: int, *, address: str, mailbox: str, tag: str, uid: int, gid: int
) -> None:
    flags_o = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(lo, hi):
        ts = _FILL_BASE + 60 * i
        body = (
            f"From: Sender {i % 100} <sender{i % 100}@example.org>\n"
            f"To: <{address}>\n"
            f"Subject: Message {i}\n"
            f"Date: {_rfc5322_date(ts)}\n"
            f"Message-ID: <fill-{i}@devstack>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            f"This is message number {i} in {mailbox}.\n"
        ).encode()
        # S= file size, W= size with CRLF line ends (= RFC822.SIZE). Dovecot trusts both
        # without reading the file; a wrong W= breaks FETCH.
        size = len(body)
        vsize = size + body.count(b"\n")
        flags = ("F" if i % 10 == 0 else "") + ("S" if i % 2 == 0 else "")
        # Zero-padded message number: lexical order == numeric order == UID order.
        name = f"{ts}.M{i:09d}{tag}.devstack,S={size},W={vsize}:2,{flags}"
        fd = os.open(name, flags_o, 0o600, dir_fd=dfd)
        try:
            os.write(fd, body)
            os.utime(fd, (ts, ts))  # INTERNALDATE = mtime
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- Postfix


def _postfix_main_cf(pf: Postfix) -> str:
    ports = pf.ports
    return f"""\
# Generated by deploy/devstack.py -- private Postfix instance ("postfix -c {pf.config_dir}"),
# /etc/postfix/main.cf is not read.
compatibility_level = 3.6
queue_directory = {pf.queue_dir}
data_directory = {pf.data_dir}
mail_owner = {POSTFIX_USER}
setgid_group = postdrop
# Trap: without maillog_file Postfix reports fatal errors only to a tty or syslog, and
# "postfix start" exits 1 with nothing said. The file must start with one of the prefixes.
maillog_file = {pf.log_path}
maillog_file_prefixes = {pf.root}
syslog_name = postfix-devstack

inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = {SMTP_HOSTNAME}
mydomain = {DEFAULT_DOMAIN}
myorigin = $mydomain
# Exempts loopback from anvil's connection limits (tests open many connections); relaying is
# never granted by it (no permit_mynetworks below).
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP dev stack
biff = no
append_dot_mydomain = no
readme_directory = no

# Every account is a virtual mailbox delivered by LMTP to Dovecot; nothing is local.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the dev stack
alias_maps =
alias_database =
relay_domains =
virtual_mailbox_domains = {", ".join(pf.domains)}
# Unknown recipients are refused at RCPT time (reject_unlisted_recipient is built in). The table
# is the stack's own tcp_table server (RecipientLookup), which answers from Dovecot's passwd-files:
# an account made while running (by the stack, or by the bridge's signup) receives mail at once,
# with no postmap and no "postfix reload".
virtual_mailbox_maps = tcp:127.0.0.1:{pf.ports.recipients}
virtual_transport = lmtp:inet:127.0.0.1:{ports.lmtp}
# Mail for other domains (authenticated submission only) never leaves loopback.
default_transport = discard:the dev stack delivers no mail to other domains
# Nobody reads postmaster here; DSNs to senders do not depend on this.
notify_classes =
message_size_limit = {POSTFIX_MESSAGE_SIZE_LIMIT}
# A deferred delivery (Dovecot restarted) is retried within seconds, not minutes.
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h

# Port-25 style reception: our domains only, no AUTH. The submission service overrides below.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_peername_lookup = no
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{ports.auth}
smtpd_sasl_auth_enable = no
smtpd_sasl_authenticated_header = yes
# Trap: after a failed login Dovecot delays further logins from that IP (2 s, then up to 15 s,
# for about 30 s) unless the first message already carries the right password. With CRAM-MD5 or
# LOGIN it does not, so one test's wrong password made the next tests' logins from 127.0.0.1
# wait 4 s (aiosmtplib and smtplib pick CRAM-MD5 first). PLAIN only: a right one never waits.
smtpd_sasl_mechanism_filter = plain
# STARTTLS offered, never required, with a self-signed certificate made for this root.
smtpd_tls_security_level = may
smtpd_tls_chain_files = {pf.key_path}, {pf.cert_path}
smtpd_tls_auth_only = no
"""


def _postfix_master_cf(pf: Postfix) -> str:
    # All services "chroot = n": Debian's init script copies resolv.conf, services and friends
    # into the queue folder for chrooted daemons; "postfix start" alone does not.
    return f"""\
# Generated by deploy/devstack.py
# service  type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{pf.ports.smtp} inet n -       n       -       -       smtpd
127.0.0.1:{pf.ports.submission} inet n - n       -       -       smtpd
  -o syslog_name=postfix-devstack/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
# flags=X (final delivery): Dovecot's LMTP announces no DSN, and without it a NOTIFY=SUCCESS
# report says "relayed" instead of "delivered" (lmtp_assume_final is obsolete and warns).
lmtp      unix  -       -       n       -       -       lmtp flags=X
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix(caldav_server.ManagedServer):
    """A private Postfix instance below ``root``: SMTP and submission ports, LMTP to Dovecot.

    Runs with its own config folder (``postfix -c``), queue and data folders; the master
    daemonizes itself, so it is found again by its pid file and stopped with SIGTERM.
    """

    def __init__(self, root: Path | str, ports: Ports, domains: Iterable[str] = ()) -> None:
        self.root = Path(root).resolve()
        self.ports = ports
        self.domains: list[str] = sorted({DEFAULT_DOMAIN} | {d.lower() for d in domains})
        self._lock = threading.Lock()
        self._master_pid: int | None = None
        self._log_start = 0  # size of the log when start() began
        self._start_attempted = False

    # -- paths

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postfix.log"

    @property
    def key_path(self) -> Path:
        return self.config_dir / "key.pem"

    @property
    def cert_path(self) -> Path:
        return self.config_dir / "cert.pem"

    @property
    def pid(self) -> int | None:
        return self._master_pid

    # -- recipients (the addresses themselves are looked up in RecipientLookup)

    def add_domain(self, domain: str) -> None:
        """Take mail for ``domain`` too: rewrites main.cf and reloads a running Postfix."""
        domain = domain.lower()
        with self._lock:
            if domain in self.domains:
                return
            self.domains = sorted({*self.domains, domain})
            if not self.config_dir.is_dir():
                return  # prepare() writes everything
            self._write_config()
            if self._running():
                self._postfix("reload")

    # -- lifecycle

    def _write_config(self) -> None:
        # Trap: Postfix programs re-read a main.cf whose mtime is within the last second or two
        # (in case it is being written), sleeping 300 ms a round: a fresh main.cf makes every
        # postmap and "postfix start" take ~2 s. So files are renamed into place already cool.
        cool = time.time() - 60
        for name, text in (
            ("main.cf", _postfix_main_cf(self)),
            ("master.cf", _postfix_master_cf(self)),
        ):
            path = self.config_dir / name
            tmp = self.config_dir / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.utime(tmp, (cool, cool))
            tmp.replace(path)

    def prepare(self) -> None:
        """Write config, recipient table and certificate (idempotent); done by :meth:`start`."""
        if os.geteuid() != 0:
            raise RuntimeError("the dev stack must run as root (Postfix drops to postfix)")
        try:
            pwd.getpwnam(POSTFIX_USER)
            grp.getgrnam("postdrop")
        except KeyError as e:
            raise RuntimeError(f"Postfix is not installed ({e}); run deploy/setup.sh") from e
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.config_dir.mkdir(mode=0o755, exist_ok=True)
        # The postfix command chdirs into the queue folder first, so it must exist; its
        # subfolders (owned by postfix, public/ and maildrop/ by group postdrop) are made by
        # "postfix start" itself (post-install create-missing, from the package's postfix-files).
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)
        postfix_uid = pwd.getpwnam(POSTFIX_USER).pw_uid
        _mkdirs_owned(self.data_dir, postfix_uid, grp.getgrnam(POSTFIX_USER).gr_gid)
        with self._lock:
            self._write_config()
        if not (self.key_path.exists() and self.cert_path.exists()):
            self._make_certificate()
        # postlogd creates the log 0600; made beforehand it keeps this mode.
        self.log_path.touch(0o644)

    def _make_certificate(self) -> None:
        self._run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
             "-subj", f"/CN={SMTP_HOSTNAME}",
             "-addext", f"subjectAltName=DNS:{SMTP_HOSTNAME},DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.key_path), "-out", str(self.cert_path)]
        )  # fmt: skip
        self.key_path.chmod(0o600)  # smtpd reads it as root, before dropping privileges

    def start(self) -> None:
        if self._running():
            return
        self.prepare()
        _check_ports_free(self.ports, ("smtp", "submission"))
        self._log_start = self.log_path.stat().st_size
        self._start_attempted = True  # stop() then looks for a master even if start() fails
        # "postfix start" runs its checks, then "master -w", which returns once the master has
        # bound its ports (or failed).
        try:
            self._postfix("start")
            self._master_pid = self._read_master_pid()
            if self._master_pid is None:
                raise RuntimeError(f"postfix started but wrote no pid:\n{self.log_tail()}")
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll both SMTP ports until each greets with 220."""
        deadline = time.monotonic() + timeout
        for port in (self.ports.smtp, self.ports.submission):
            while True:
                if not self._running():
                    raise RuntimeError(f"postfix is not running:\n{self.log_tail()}")
                # A daemon that dies at start-up (no SASL mechanisms, a bad certificate) leaves
                # its port accepting but never greeting while the master throttles it for 60 s.
                if self._fatal_logged():
                    raise RuntimeError(f"postfix failed to start:\n{self.log_tail()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        if s.recv(256).startswith(b"220"):
                            s.sendall(b"QUIT\r\n")
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postfix not ready after {timeout}s:\n{self.log_tail()}")
                time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the master (it takes its children down) and wait until all are gone.

        Not "postfix stop": that polls in steps of one second.
        """
        pid, self._master_pid = self._master_pid, None
        if pid is None and self._start_attempted:
            pid = self._read_master_pid()  # start() was interrupted after the master came up
        self._start_attempted = False
        if pid is None or not self._is_our_master(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # The master leads its own process group (setsid); its children hold the listening
        # sockets too, so wait for the group to empty before the ports count as free.
        deadline = time.monotonic() + timeout
        while _group_running(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.01)

    def _fatal_logged(self) -> bool:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return b" fatal: " in log.read()
        except OSError:
            return False

    def _read_master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _is_our_master(self, pid: int) -> bool:
        """The process is alive and is a Postfix master working in our queue folder."""
        try:
            return os.readlink(f"/proc/{pid}/cwd") == str(self.queue_dir)
        except OSError:
            return False

    def _running(self) -> bool:
        return self._master_pid is not None and self._is_our_master(self._master_pid)

    def _postfix(self, command: str) -> None:
        try:
            self._run(["postfix", "-c", str(self.config_dir), command], timeout=60)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n-- {self.log_path}:\n{self.log_tail()}") from e

    @staticmethod
    def _run(args: list[str], timeout: float = 30) -> None:
        done = subprocess.run(
            args,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited with {done.returncode}: {done.stderr or done.stdout}"
            )


def _group_running(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies do not count).

    The master is a daemon whose parent has exited: it and the children it leaves behind are
    reaped by init, which may take a second or two (or never, in a container whose PID 1 does
    not reap), but a zombie holds no socket.
    """
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat_line = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat_line[stat_line.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


# --------------------------------------------------------------------------- recipients

_ADDRESS_KEY = re.compile(r"[a-z0-9_+-][a-z0-9._+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*")


class RecipientLookup:
    """Postfix's recipient table, answered live from Dovecot's passwd-files (tcp_table(5)).

    Postfix asks ``get user@domain`` (then ``get @domain``) on a kept-open connection; an address
    is a mailbox when ``users/<domain>/<local part>`` exists. So the passwd-files are the only
    list of accounts: the bridge's signup, which writes one, needs nothing else for the new
    account to receive mail. Loopback only; a thread per connection (Postfix keeps a few open).
    """

    def __init__(self, users_path: Path, port: int) -> None:
        self.users_path = users_path
        self.port = port
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    def has_mailbox(self, key: str) -> bool:
        if not _ADDRESS_KEY.fullmatch(key):
            return False
        local, _, domain = key.partition("@")
        return (self.users_path / domain / local).is_file()

    def answer(self, line: bytes) -> bytes:
        request = line.decode("ascii", "replace").strip()
        verb, _, raw = request.partition(" ")
        if verb != "get":
            return b"400 only get is supported\n"
        if self.has_mailbox(urllib.parse.unquote(raw).lower()):
            return b"200 OK\n"
        return b"500 no such mailbox\n"

    def start(self) -> None:
        lookup = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    self.wfile.write(lookup.answer(line))
                    self.wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="recipient-lookup", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


# --------------------------------------------------------------------------- DevStack


@dataclass
class DevStack:
    """All backends of the development stack, started and stopped together."""

    root: Path
    ports: Ports = field(default_factory=lambda: DEFAULT_PORTS)
    accounts: Iterable[Account] = DEMO_ACCOUNTS
    # Most IMAP connections (= Dovecot imap processes) at once; load runs raise it (about three
    # per bridge session with a folder open).
    imap_process_limit: int = IMAP_PROCESS_LIMIT
    dovecot: Dovecot = field(init=False)
    postfix: Postfix = field(init=False)
    recipients: RecipientLookup = field(init=False)
    radicale: caldav_server.Radicale = field(init=False)
    kamailio: sip_servers.Kamailio = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.dovecot = Dovecot(
            self.root / "dovecot",
            self.ports,
            self.accounts,
            imap_process_limit=self.imap_process_limit,
        )
        self.postfix = Postfix(
            self.root / "postfix", self.ports, (a.domain for a in self.dovecot.accounts.values())
        )
        self.recipients = RecipientLookup(self.dovecot.users_path, self.ports.recipients)
        # Radicale checks logins against Dovecot's passwd-files: one list of accounts.
        self.radicale = caldav_server.Radicale(
            self.root / "radicale", self.ports.caldav, passwd_dir=self.dovecot.users_path
        )
        self.kamailio = sip_servers.Kamailio(
            self.root / "kamailio",
            self.ports.sip,
            {a.address: a.password for a in self.dovecot.accounts.values()},
            domain=DEFAULT_DOMAIN,
        )
        self._counter = itertools.count(1)  # next() is atomic: safe from worker threads

    def start(self, *, seed: bool = True) -> None:
        try:
            self.dovecot.prepare()
            if seed:
                self.dovecot.seed()
            self.dovecot.start()
            self.recipients.start()
            # After Dovecot: Postfix delivers to its LMTP port and authenticates through it.
            self.postfix.start()
            self.radicale.start()
            self.kamailio.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Each one stopped even when stopping another failed.
        stoppers = (
            self.kamailio.stop, self.radicale.stop, self.postfix.stop,
            self.recipients.stop, self.dovecot.stop,
        )  # fmt: skip
        errors: list[BaseException] = []
        for stop in stoppers:
            try:
                stop()
            except BaseException as exc:  # the first is raised once all are stopped
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_account(self, name: str, password: str, real_name: str = "") -> Account:
        """Add an account: it can log in and receive mail over SMTP at once."""
        account = self.dovecot.add_account(name, password, real_name)
        self.postfix.add_domain(account.domain)
        self.kamailio.add_user(account.address, password)
        return account

    def set_quota(self, user: str, limit: int | None) -> Account:
        return self.dovecot.set_quota(user, limit)

    def new_account(self, prefix: str = "test") -> Account:
        """A fresh account with a unique name (password = name + "pass")."""
        while True:
            n = next(self._counter)
            local = f"{prefix}{os.getpid()}x{n}"
            address = f"{local}@{DEFAULT_DOMAIN}"
            if address not in self.dovecot.accounts and not self.dovecot.home(address).exists():
                return self.add_account(address, f"{local}pass", f"Test {n}")

    def seed(self) -> None:
        self.dovecot.seed()

    def fill_maildir(
        self, user: str, mailbox: str, count: int, *, start: int | None = None
    ) -> None:
        self.dovecot.fill_maildir(user, mailbox, count, start=start)

    def bridge_config_toml(
        self, listen_port: int, http_port: int = 8100, xmap_port: int = 11026
    ) -> str:
        return bridge_config_toml(
            self.ports,
            listen_port,
            self.dovecot.accounts.values(),
            http_port=http_port,
            xmap_port=xmap_port,
            users_dir=self.dovecot.users_path,
        )

    def describe(self) -> str:
        rows = [
            ("IMAP", f"127.0.0.1:{self.ports.imap}", "LOGIN / PLAIN / CRAM-MD5, no TLS"),
            ("LMTP", f"127.0.0.1:{self.ports.lmtp}", "delivery to Dovecot"),
            ("Dovecot auth", f"127.0.0.1:{self.ports.auth}", "SASL for Postfix"),
            ("Recipients", f"127.0.0.1:{self.ports.recipients}", "Postfix tcp_table of mailboxes"),
            ("CalDAV", f"127.0.0.1:{self.ports.caldav}", "Radicale, HTTP Basic as the mail login"),
            ("SIP", f"127.0.0.1:{self.ports.sip}", "Kamailio, UDP and TCP, digest as user1"),
            ("SMTP", f"127.0.0.1:{self.ports.smtp}", "Postfix, our domains only, no AUTH"),
            (
                "Submission",
                f"127.0.0.1:{self.ports.submission}",
                "Postfix, AUTH PLAIN required, STARTTLS offered (self-signed)",
            ),
        ]
        out = ["server        address          notes"]
        out += [f"{a:<13} {b:<16} {c}" for a, b, c in rows]
        out.append("")
        out.append("account                 password     name")
        out += [
            f"{a.address:<23} {a.password:<12} {a.real_name}"
            for a in self.dovecot.accounts.values()
        ]
        out.append("")
        out.append(f"root {self.root}")
        out.append(f"logs {self.dovecot.log_path}\n     {self.postfix.log_path}")
        out.append(f"     {self.radicale.log_path}")
        out.append(f"     {self.kamailio.log_path}")
        return "\n".join(out)


def bridge_config_toml(
    ports: Ports,
    listen_port: int,
    accounts: Iterable[Account] = DEMO_ACCOUNTS,
    *,
    http_port: int = 8100,
    xmap_port: int = 11026,
    users_dir: Path = DEFAULT_ROOT / "dovecot" / "users",
) -> str:
    """TOML config for the bridge pointing at the dev stack's servers."""
    names = "\n".join(
        f'{a.local} = "{a.real_name}"'
        for a in accounts
        if a.domain == DEFAULT_DOMAIN and a.real_name
    )
    return f"""\
[server]
default_domain = "{DEFAULT_DOMAIN}"

[tcp]
host = "127.0.0.1"
port = {listen_port}

[http]
host = "127.0.0.1"
port = {http_port}

[xmap]
host = "127.0.0.1"
port = {xmap_port}

[state]
path = "{DEFAULT_ROOT / "bridge-state.sqlite"}"

[domains."{DEFAULT_DOMAIN}".imap]
host = "127.0.0.1"
port = {ports.imap}

# Postfix's submission port. STARTTLS is offered with a self-signed certificate that nothing
# trusts, so the bridge must not take it up.
[domains."{DEFAULT_DOMAIN}".smtp]
host = "127.0.0.1"
port = {ports.submission}
starttls = false
timeout = 30

# signup and passwordModify write Dovecot's per-user passwd-files (the bridge runs as root
# here, as the stack does); recoverPassword mails through the port-25 style SMTP port, which
# takes mail for the stack's own addresses only.
# Radicale: calendars, logged in to with the mail credentials.
[domains."{DEFAULT_DOMAIN}".caldav]
url = "http://127.0.0.1:{ports.caldav}/"
poll_seconds = 2

# Kamailio: registrar, proxy and presence for signalBind, calls, IMs.
[domains."{DEFAULT_DOMAIN}".sip]
host = "127.0.0.1"
port = {ports.sip}
transport = "udp"
registration_check_seconds = 2

[domains."{DEFAULT_DOMAIN}".provisioning]
kind = "passwd-file"
directory = "{users_dir / DEFAULT_DOMAIN}"
signup = true
recovery_smtp_port = {ports.smtp}

[domains."{DEFAULT_DOMAIN}".real_names]
{names}
"""


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start, seed, run in the foreground until ^C")
    p_start.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p_conf = sub.add_parser("config", help="print the bridge TOML config for the stack")
    for p in (p_start, p_conf):
        p.add_argument("--imap-port", type=int, default=DEFAULT_PORTS.imap)
        p.add_argument("--lmtp-port", type=int, default=DEFAULT_PORTS.lmtp)
        p.add_argument("--auth-port", type=int, default=DEFAULT_PORTS.auth)
        p.add_argument("--smtp-port", type=int, default=DEFAULT_PORTS.smtp)
        p.add_argument("--submission-port", type=int, default=DEFAULT_PORTS.submission)
        p.add_argument("--recipients-port", type=int, default=DEFAULT_PORTS.recipients)
        p.add_argument("--caldav-port", type=int, default=DEFAULT_PORTS.caldav)
        p.add_argument("--sip-port", type=int, default=DEFAULT_PORTS.sip)
    p_conf.add_argument("--listen-port", type=int, default=11024)
    p_conf.add_argument("--http-port", type=int, default=8100)
    p_conf.add_argument("--xmap-port", type=int, default=11026)
    args = parser.parse_args(argv)
    ports = Ports(
        imap=args.imap_port,
        lmtp=args.lmtp_port,
        auth=args.auth_port,
        smtp=args.smtp_port,
        submission=args.submission_port,
        recipients=args.recipients_port,
        caldav=args.caldav_port,
        sip=args.sip_port,
    )
    if args.command == "config":
        sys.stdout.write(
            bridge_config_toml(
                ports, args.listen_port, http_port=args.http_port, xmap_port=args.xmap_port
            )
        )
        return 0
    stack = DevStack(args.root, ports)

    def start() -> str:
        stack.start()
        return "\n" + stack.describe()

    result: int = caldav_server.run_until_signalled("dev stack", start, stack.stop)
    return result


if __name__ == "__main__":
    sys.exit(main())
