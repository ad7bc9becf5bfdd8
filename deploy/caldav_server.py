#!/usr/bin/env python3
"""Radicale (CalDAV) as a private instance on loopback, for the development stack.

Standard library only, like ``devstack.py``, which loads it by path. (Not named radicale.py:
with ``deploy/`` on ``sys.path`` that name would shadow the server package.)

Everything lives below one folder ("root"): config, htpasswd file, rights file, collections and
the log. Users log in with HTTP Basic as their full address (``user1@example.test``) and the
same password as on IMAP; each owns ``/<address>/`` and the calendars below it. Radicale creates
a user's home (principal collection) at the first authenticated request, not the calendars.

Traps this module avoids (measured with Radicale 3.9.0, see DESIGN.md section 8):

- ``[auth] delay`` defaults to 1 s: every failed login sleeps 0.5-1.5 s in the worker thread.
  Set to 0, and ``[server] delay_on_error`` (the same for 5xx answers) too.
- The built-in server keeps socketserver's listen backlog of 5 (``request_queue_size``) and
  answers one request per TCP connection (no keep-alive), so every request is a new connection:
  past a handful at once the kernel drops SYNs and clients retry after 1 s (20 concurrent
  PROPFINDs: slowest 1.25 s with backlog 5, 0.07 s with 128). Radicale has no setting for it,
  so the server is started by a tiny launcher (``_LAUNCHER``) that raises the class attribute
  before calling Radicale's own ``run()`` (the alternative, ``[server] type = hypercorn``, needs
  an extra package). ``max_connections`` (busy workers before it stops accepting, default 8) is
  an ordinary setting, raised too: it matters for slow requests, not for quick ones.
- ``--config FILE`` replaces the default config search path (``/etc/radicale/config``,
  ``~/.config/radicale/config``) and ``RADICALE_CONFIG`` is removed from the environment, so no
  system configuration is read.

Sharing: Radicale has no CalDAV sharing (no CalendarServer ``share`` POST, no WebDAV ACL
method). What it has: (1) static rules in a rights file (``[rights] type = from_file``), read
once at start-up; this class writes them from ``shares`` (a calendar of one user readable, or
readable and writable, by another, who reaches it at its owner's path ``/<owner>/<calendar>/``);
(2) since 3.7 a server-specific sharing API (``POST /.sharing/v1/...``, ``[sharing]`` section)
that maps a collection into another user's home or exposes it by token; not used here.

Accounts: ``users`` go to an htpasswd file (plain passwords, re-read at every login). Or, with
``dovecot_auth=(host, port)``, Radicale asks Dovecot's auth service (the inet listener the dev
stack opens for Postfix) at every request: mail accounts, signups and password changes apply to
CalDAV with nothing to copy. Trap: after a wrong password Dovecot delays the next logins from
that IP, right ones included, by 2 s each for a while; Radicale authenticates every request, so
one bad login stalls every CalDAV client on 127.0.0.1 for seconds (measured: 2.0 s for the wrong
one, 4.0 s for the next right two-request login).

CLI (manual checks; users default to the dev stack's demo accounts)::

    python deploy/caldav_server.py ROOT PORT [LOGIN:PASSWORD ...]
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

# The passwd-file login check (caldav_passwd_auth.py): its module name and where it looks.
PASSWD_AUTH_MODULE = "devstack_passwd_auth"
PASSWD_DIR_VARIABLE = "DEVSTACK_PASSWD_DIR"

# Listen backlog and parallel workers: far above what the tests and a dev bridge open at once.
DEFAULT_BACKLOG = 128
DEFAULT_MAX_CONNECTIONS = 64
# Seconds a client connection may stay silent before Radicale drops it.
DEFAULT_SOCKET_TIMEOUT = 30

# Runs in the child: raise the listen backlog of Radicale's server class, then hand over to
# Radicale's own command line (argv[1] is the backlog, the rest are Radicale's arguments).
# socketserver.TCPServer.server_activate() calls listen(self.request_queue_size).
_LAUNCHER = (
    """\
import sys
import radicale.server
radicale.server.ParallelHTTPServer.request_queue_size = int(sys.argv.pop(1))
sys.argv[0] = "radicale"
"""
    + (Path(__file__).parent / "caldav_passwd_auth.py").read_text(encoding="utf-8")
    + """
from radicale.__main__ import run
run()
"""
)


def read_log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a server's log, to quote in an error ("" when there is none yet)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedServer(abc.ABC):
    """What every dev-stack server shares: a log file to quote, and `with` to run it."""

    @property
    @abc.abstractmethod
    def log_path(self) -> Path: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def log_tail(self, lines: int = 30) -> str:
        return read_log_tail(self.log_path, lines)

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


@dataclass(frozen=True)
class Share:
    """``user`` may read (and with ``write`` also change) ``owner``'s calendar ``calendar``.

    ``calendar`` is the path segment below the owner's home (``Calendar`` for the default one).
    The grantee also gets to list the owner's home, so the calendar can be found by name;
    Radicale lists only the collections the grantee may read.
    """

    owner: str
    calendar: str
    user: str
    write: bool = False


def _check_field(value: str, what: str) -> None:
    if not value or any(c in value for c in "\r\n\0"):
        raise ValueError(f"bad {what}: {value!r}")


def _check_login(login: str) -> str:
    _check_field(login, "login")
    if ":" in login or "/" in login or login.startswith("."):
        raise ValueError(f"login must not contain ':' or '/' nor start with '.': {login!r}")
    # Radicale lower-cases logins (lc_username below), so the files hold them lower-cased.
    return login.lower()


def _rule_literal(text: str) -> str:
    """A literal for a from_file pattern: regex-escaped, braces doubled (the patterns go through
    str.format), percent signs doubled (ConfigParser interpolation)."""
    return re.escape(text).replace("{", "{{").replace("}", "}}").replace("%", "%%")


def _ini_value(text: str) -> str:
    _check_field(text, "config value")
    return text.replace("%", "%%")


class Radicale(ManagedServer):
    """A private Radicale below ``root``, listening on 127.0.0.1:``port``.

    ``users`` maps logins (full addresses) to plain-text passwords. Works before start and while
    running: Radicale reads the htpasswd file at every login (``htpasswd_cache = False``), so
    :meth:`add_user` takes effect at the next request. ``shares`` are fixed at start-up.
    """

    def __init__(
        self,
        root: Path | str,
        port: int,
        users: Mapping[str, str] | None = None,
        *,
        shares: Iterable[Share] = (),
        python: str = sys.executable,
        backlog: int = DEFAULT_BACKLOG,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        dovecot_auth: tuple[str, int] | None = None,
        passwd_dir: Path | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.port = port
        self.users: dict[str, str] = {}
        for login, password in (users or {}).items():
            _check_field(password, "password")
            self.users[_check_login(login)] = password
        self.shares = tuple(shares)
        for share in self.shares:
            _check_login(share.owner)
            _check_login(share.user)
            _check_field(share.calendar, "calendar")
            if "/" in share.calendar:
                raise ValueError(f"calendar must be one path segment: {share.calendar!r}")
        self.python = python
        self.backlog = backlog
        self.max_connections = max_connections
        self.socket_timeout = socket_timeout
        self.dovecot_auth = dovecot_auth
        self.passwd_dir = passwd_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- paths

    @property
    def config_path(self) -> Path:
        return self.root / "radicale.conf"

    @property
    def htpasswd_path(self) -> Path:
        return self.root / "users"

    @property
    def rights_path(self) -> Path:
        return self.root / "rights"

    @property
    def collections_path(self) -> Path:
        return self.root / "collections"

    @property
    def log_path(self) -> Path:
        return self.root / "radicale.log"

    @property
    def url(self) -> str:
        """Base URL for CalDAV clients (discovery starts here)."""
        return f"http://127.0.0.1:{self.port}/"

    def home_url(self, login: str) -> str:
        """URL of a user's home (principal and calendar-home-set in Radicale)."""
        return f"{self.url}{login.lower()}/"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- users

    def add_user(self, login: str, password: str) -> None:
        """Add a user or change a password; seen by the next request when running."""
        _check_field(password, "password")
        login = _check_login(login)
        with self._lock:
            self.users[login] = password
            if self.htpasswd_path.exists():
                self._write_htpasswd()

    def _write_htpasswd(self) -> None:
        # Plain-text "login:password" lines; renamed into place, so a request never reads half.
        text = "".join(f"{login}:{password}\n" for login, password in sorted(self.users.items()))
        tmp = self.htpasswd_path.with_name(".users.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.htpasswd_path)

    # -- config

    def _config_text(self) -> str:
        return f"""\
# Generated by deploy/caldav_server.py -- private Radicale instance, /etc/radicale is not read.
[server]
hosts = 127.0.0.1:{self.port}
max_connections = {self.max_connections}
timeout = {self.socket_timeout}
# No sleep before a 5xx answer (default 1 s).
delay_on_error = 0

[auth]
{self._auth_backend()}
# No sleep after a failed login (default 1 s, in the worker thread).
delay = 0
# Logins are addresses: case-insensitive, as on IMAP.
lc_username = True

[rights]
type = from_file
file = {_ini_value(str(self.rights_path))}

[storage]
filesystem_folder = {_ini_value(str(self.collections_path))}

[web]
type = none

[logging]
level = info
mask_passwords = True
"""

    def _auth_backend(self) -> str:
        if self.passwd_dir is not None:
            return f"""\
# Every login is checked against Dovecot's per-user passwd-files below {self.passwd_dir}
# (caldav_passwd_auth.py, run in the server process): mail accounts, signups and password
# changes apply here at once, and a wrong password stalls nobody.
type = {PASSWD_AUTH_MODULE}"""
        if self.dovecot_auth is not None:
            host, port = self.dovecot_auth
            return f"""\
# Every login is checked by Dovecot's auth service (client protocol, AUTH PLAIN) on
# {host}:{port}: the mail accounts, their password changes and new signups, no copy here.
type = dovecot
dovecot_connection_type = AF_INET
dovecot_host = {_ini_value(host)}
dovecot_port = {port}"""
        return f"""\
type = htpasswd
htpasswd_filename = {_ini_value(str(self.htpasswd_path))}
htpasswd_encryption = plain
# Re-read at every login: users added while running can log in at once.
htpasswd_cache = False"""

    def _rights_text(self) -> str:
        # First matching section wins. "R"/"W": read/write plain collections (the root and the
        # homes); "r"/"w": read/write calendars and address books (RFC 4791 collections).
        out = [
            "# Generated by deploy/caldav_server.py",
            "# Everyone logged in may look at the root (discovery starts there).",
            "[root]",
            "user: .+",
            "collection:",
            "permissions: R",
            "",
            "# Each user owns the home /<login>/ and everything one level below it.",
            "[owner-home]",
            "user: .+",
            "collection: {user}",
            "permissions: RW",
            "",
            "[owner-collections]",
            "user: .+",
            "collection: {user}/[^/]+",
            "permissions: rw",
            "",
            "# Sharing by name: a calendar called for-<login> in anyone's home is <login>'s to",
            "# read and change. To find it, everyone may look into every home (Radicale lists",
            "# only the collections the looker may read).",
            "[shared-by-name]",
            "user: .+",
            "collection: [^/]+/for-{user}",
            "permissions: rw",
            "",
            "[other-homes]",
            "user: .+",
            "collection: [^/]+",
            "permissions: R",
            "",
        ]
        for n, share in enumerate(self.shares):
            user = _rule_literal(share.user.lower())
            owner = _rule_literal(share.owner.lower())
            out += [
                f"# {share.owner}'s {share.calendar} shared with {share.user}",
                f"[share-{n}-home]",
                f"user: {user}",
                f"collection: {owner}",
                "permissions: R",
                "",
                f"[share-{n}]",
                f"user: {user}",
                f"collection: {owner}/{_rule_literal(share.calendar)}",
                f"permissions: {'rw' if share.write else 'r'}",
                "",
            ]
        return "\n".join(out)

    def prepare(self) -> None:
        """Write config, users and rights (idempotent); done by :meth:`start`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.collections_path.mkdir(mode=0o700, exist_ok=True)
        self.config_path.write_text(self._config_text(), encoding="utf-8")
        self.rights_path.write_text(self._rights_text(), encoding="utf-8")
        with self._lock:
            self._write_htpasswd()

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers HTTP; a failure says why, with the log's tail."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        _check_port_free(self.port)
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROPPED}
        if self.passwd_dir is not None:
            env[PASSWD_DIR_VARIABLE] = str(self.passwd_dir)
        # Radicale logs to stderr; the file is its log.
        self.proc = launch(
            [self.python, "-c", _LAUNCHER, str(self.backlog), "--config", str(self.config_path)],
            self.log_path, self.root, env,
        )  # fmt: skip
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll the port until an HTTP answer comes (any status: the root needs a login)."""
        wait_until_ready(
            self.proc, "radicale", lambda: _answers_http(self.port), timeout, self.log_tail
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process we started and wait for it (it finishes running requests)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, timeout)

    def describe(self) -> str:
        out = [f"Radicale   {self.url}   (HTTP Basic, login = full address)"]
        out += [f"  {login}" for login in sorted(self.users)]
        out.append(f"root {self.root}\nlog  {self.log_path}")
        return "\n".join(out)


# RADICALE_CONFIG would add config files; JOURNAL_STREAM makes Radicale log to the journal.
_ENV_DROPPED = frozenset({"RADICALE_CONFIG", "JOURNAL_STREAM"})


def launch(
    args: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a dev-stack server in a session of its own (a Ctrl-C in a CLI must not reach it
    directly), its output appended to its log file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip


def wait_until_ready(
    proc: subprocess.Popen[bytes] | None,
    name: str,
    ready: Callable[[], bool],
    timeout: float,
    log_tail: Callable[[], str],
    interval: float = 0.02,
) -> None:
    """Poll `ready` until it says yes; a server that exits or stays silent past `timeout` is
    an error carrying the tail of its log."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is None:
            raise RuntimeError(f"{name} is not started")
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready after {timeout}s:\n{log_tail()}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a server started in a session of its own (start_new_session) and wait; after
    `timeout`, SIGKILL its session (only processes it started are in it)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _check_port_free(port: int) -> None:
    """Fail clearly when the port is taken: else wait_ready() might greet another server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socketserver does
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise RuntimeError(f"radicale port 127.0.0.1:{port} is not free: {e}") from e


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"OPTIONS / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


# --------------------------------------------------------------------------- CLI

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_until_signalled(name: str, start: Callable[[], str], stop: Callable[[], None]) -> int:
    """The foreground command of a dev-stack server: `start()` (what it returns is printed),
    then wait for SIGINT, SIGTERM or SIGHUP, then `stop()`. The signals raise
    KeyboardInterrupt from the start on, so whatever was started gets stopped; SIGINT too: a
    shell without job control starts background commands with SIGINT ignored, and Python keeps
    that."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler)
    try:
        t0 = time.monotonic()
        described = start()
        print(f"{name} up in {time.monotonic() - t0:.2f}s\n{described}")
        print("\nCtrl-C to stop.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # let stop() finish
        stop()
        print("stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="caldav_server.py", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("users", nargs="*", metavar="LOGIN:PASSWORD")
    args = parser.parse_args(argv)
    users = dict(u.split(":", 1) for u in args.users)
    if not users:
        # The dev stack's demo accounts; devstack.py sits beside this file.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from devstack import DEMO_ACCOUNTS

        users = {a.address: a.password for a in DEMO_ACCOUNTS}
    server = Radicale(args.root, args.port, users)

    def start() -> str:
        server.start()
        return server.describe()

    return run_until_signalled("radicale", start, server.stop)


if __name__ == "__main__":
    sys.exit(main())
