#!/usr/bin/env python3
"""The SIP side of the development stack: a private Kamailio and headless baresip far ends.

Standard library only, like ``devstack.py``, which loads it by path (``_load_sibling``).

Kamailio (5.6, Debian packages ``kamailio``, ``kamailio-presence-modules``,
``kamailio-sqlite-modules``) runs from its own generated ``kamailio.cfg`` below one folder
("root"), on UDP and TCP 127.0.0.1:<port>, as registrar (in-memory usrloc: registrations are
lost on restart), digest-authenticating proxy between registered users (Record-Route, loose
routing inside dialogs: re-INVITE, BYE, REFER/NOTIFY, INFO), and presence server (PUBLISH,
SUBSCRIBE, NOTIFY for ``presence`` and ``presence.winfo``; every watcher is accepted at once,
the bridge authorizes watchers itself). A request for a user without a registration gets 404
(MESSAGE too: no offline store). Nothing of ``/etc/kamailio`` is read and no system service is
touched.

Accounts: a login ``user1@example.test`` (or just ``user1``, in the default domain) is the
SIP AOR ``sip:user1@example.test``. The digest username is the user part (``user1``) and the
realm is the login's domain (``example.test``): ha1 = md5("user1:example.test:<password>").
Every domain is served (loopback only): a user exists when the subscriber table has it, so
users of new domains can be added while running. Every request that starts something
(REGISTER, INVITE, MESSAGE, SUBSCRIBE, PUBLISH, REFER, OPTIONS to a user...) is challenged (401
for REGISTER, 407 otherwise, qop=auth), except the stack's own probes (From ``probe.invalid``);
requests inside a dialog are not. Nothing is relayed anywhere but to registered contacts.

baresip (1.0, ``baresip-core``) is a far end for the tests: no sound hardware (``aubridge``),
controlled over ``ctrl_tcp`` (netstring-framed JSON, see :class:`Baresip`).

Traps (measured here, Kamailio 5.6.3 and baresip 1.0.0 from Debian 12):

- ``sqlite:///tmp/x`` opens the *relative* path ``tmp/x``: an absolute path needs four slashes.
- Kamailio logs to syslog unless started with ``-E`` (and ``log_stderror = yes``); ``-DD``
  keeps the process we start as the main one (no daemon fork).
- When a worker fails to initialise (bad DB URL), the main process can wait ``exit_timeout``
  (60 s by default) for a stuck worker before exiting, with status 0: set to 3 s.
- A worker SIGTERMed in its first moments can miss the signal; see :func:`_stop_group`.
  Readiness is checked over UDP *and* TCP (its receivers are forked last).
- A TCP client is reached over its own connection only for the host:port its Via names
  (``force_tcp_alias``); without it, a client advertising a port it does not listen on got
  477 for every request to it.
- baresip opens TLS on sip_port + 1 (no setting to avoid it), takes one ctrl_tcp connection
  at a time, sends events only while one is open, and with ``answermode=auto`` answers
  without a ``CALL_INCOMING`` event. ``net_interface lo`` fails ("No such device"); the
  address works. Call verbs (hold, resume, transfer, reinvite) exist only during a call.

CLI (manual checks; users default to the dev stack's demo accounts)::

    python deploy/sip_servers.py ROOT PORT [LOGIN:PASSWORD ...] [--baresip LOGIN:PASSWORD]
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import queue
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

KAMAILIO_BIN = "/usr/sbin/kamailio"
# Debian's multiarch module folder (x86_64-linux-gnu, aarch64-linux-gnu, ...).
KAMAILIO_MODULES = next(
    iter(sorted(Path("/usr/lib").glob("*/kamailio/modules"))),
    Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"),
)
# The packaged table definitions (kamailio-sqlite-modules): they match the modules' versions.
KAMAILIO_SQLITE_SCHEMA = Path("/usr/share/kamailio/db_sqlite")
BARESIP_BIN = "/usr/bin/baresip"
DEFAULT_DOMAIN = "example.test"
DEFAULT_PORT = 5060 + 10000  # 15060: the dev stack's default, away from a system 5060
# From domain of the stack's own OPTIONS probes (RFC 2606 reserved): not challenged.
PROBE_DOMAIN = "probe.invalid"


def _load_caldav_server() -> ModuleType:
    """caldav_server.py (launch, wait_until_ready, stop_process), by path and under the name
    devstack gives it, so both share one module object."""
    name = "devstack_caldav_server"  # devstack._load_sibling("caldav_server")
    module = sys.modules.get(name)
    if module is not None:
        return module
    path = Path(__file__).with_name("caldav_server.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_caldav_server = _load_caldav_server()
stop_process = _caldav_server.stop_process


# --------------------------------------------------------------------------- helpers


def _check_field(value: str, what: str) -> None:
    if not value or any(c in value for c in "\r\n\0\"'\\"):
        raise ValueError(f"bad {what}: {value!r}")


def _check_password(password: str) -> None:
    # Only stored in SQLite (bound parameters): anything but line breaks and NUL goes.
    if not password or any(c in password for c in "\r\n\0"):
        raise ValueError("bad password: empty or with a line break")


def _split_login(login: str, default_domain: str) -> tuple[str, str]:
    """(user, domain) of a login ("user1", domain ``default_domain``, or "user1@<domain>"),
    lower-cased."""
    _check_field(login, "login")
    user, at, domain = login.lower().partition("@")
    if not at:
        domain = default_domain.lower()
    if not user or any(c in user for c in ":@;<>/ \t"):
        raise ValueError(f"bad SIP user in login {login!r}")
    if not domain or any(c in domain for c in ":@;<>/ \t"):
        raise ValueError(f"bad domain in login {login!r}")
    return user, domain


def ha1(user: str, realm: str, password: str) -> str:
    """Digest HA1 (RFC 2617, MD5) as Kamailio's subscriber table stores it."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def _port_free(port: int) -> bool:
    """True when both UDP and TCP 127.0.0.1:port can be bound."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Kamailio does
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _check_port_free(port: int, what: str) -> None:
    """Fail clearly when the port is taken: else wait_ready() might greet another server."""
    if not _port_free(port):
        raise RuntimeError(f"{what} port 127.0.0.1:{port} (UDP or TCP) is not free")


def free_port_run(n: int = 1, attempts: int = 200) -> int:
    """A port p with p .. p+n-1 all free on 127.0.0.1 for both UDP and TCP (for tests).

    SIP servers take UDP and TCP on the same port, and baresip also takes the next one (TLS).
    """
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first + n <= 65536 and all(_port_free(first + i) for i in range(n)):
            return first
    raise RuntimeError(f"no run of {n} free loopback ports found")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(proc: subprocess.Popen[bytes], timeout: float, nudge_after: float = 0.3) -> None:
    """SIGTERM the leader we started, wait, then make sure its whole session is gone.

    The process was started with ``start_new_session``, so its process group holds only what it
    forked (Kamailio's workers). Kamailio's main process signals its children and waits for
    them. Trap (1 in 5 stops right after start; 1 in 80 once readiness also waits for TCP): a
    worker signalled in its first moments misses the SIGTERM, sits in epoll_wait, and the main
    waits for it for ``exit_timeout``. So after ``nudge_after`` seconds the group gets SIGTERM
    once more (the worker handles it by then); after ``timeout``, SIGKILL.
    """
    pgid = proc.pid
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(nudge_after)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            stop_process(proc, timeout)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
            break
        time.sleep(0.01)


# --------------------------------------------------------------------------- raw SIP probe


def sip_options(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 0.5,
    ruri: str | None = None,
    transport: str = "udp",
) -> bytes | None:
    """Send one OPTIONS (to the server itself unless ``ruri``); the final response's head, or
    None when none came in ``timeout``. From ``PROBE_DOMAIN``: the proxy does not ask for
    credentials."""
    ruri = ruri or f"sip:{host}:{port}"
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        call_id = f"probe-{secrets.token_hex(8)}"
        try:
            s.bind(("127.0.0.1", 0))
            # Connected UDP too: an ICMP port-unreachable (nothing bound yet) fails recv() at
            # once instead of letting it wait for the whole timeout.
            s.connect((host, port))
            lport = s.getsockname()[1]
            msg = (
                f"OPTIONS {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{lport}"
                f";branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{PROBE_DOMAIN}>;tag={secrets.token_hex(4)}\r\n"
                f"To: <{ruri}>\r\n"
                f"Call-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            s.sendall(msg.encode())
            buf = b""
            while True:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                data = s.recv(65535)
                if not data:
                    return None
                buf = buf + data if kind == socket.SOCK_STREAM else data
                while b"\r\n\r\n" in buf:
                    # Responses to OPTIONS carry no body here; one head per message.
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    if head.startswith(b"SIP/2.0 1"):
                        continue  # provisional
                    if call_id.encode() in head:
                        return head
        except OSError:
            return None


# --------------------------------------------------------------------------- Kamailio


def _kamailio_cfg(k: Kamailio) -> str:
    # Native Kamailio script. The preprocessor's "#!" lines and "#" comments are both fine here.
    # Trap: the path after "sqlite://" is taken as relative unless it starts with "/" itself
    # ("sqlite:///tmp/x" opens "tmp/x"), so an absolute path needs four slashes.
    db = f"sqlite:///{k.db_path}"
    return f"""\
#!KAMAILIO
# Generated by deploy/sip_servers.py -- private Kamailio instance, /etc/kamailio is not read.

debug = {k.debug}
log_stderror = yes
log_prefix = "{{$mt $hdr(CSeq) $ci}} "
memdbg = 5
memlog = 5
fork = yes
children = {k.children}
tcp_children = {k.children}
disable_sctp = yes
# Trap: when a worker fails to initialise, the main process shuts down but can wait on a stuck
# worker (seen in epoll_wait) for exit_timeout, 60 s by default, and exits with status 0.
exit_timeout = 3
auto_aliases = no
listen = udp:127.0.0.1:{k.port}
listen = tcp:127.0.0.1:{k.port}
# "myself" is only this address: the served domains are the subscriber table's (see AUTH).
alias = "127.0.0.1:{k.port}"
# Keep TCP connections to registered clients as long as their registration: requests to them
# go back over the connection they registered on.
tcp_connection_lifetime = 3605
tcp_accept_no_cl = yes
server_header = "Server: devstack-kamailio"
user_agent_header = "User-Agent: devstack-kamailio"

mpath = "{KAMAILIO_MODULES}/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "db_sqlite.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "presence.so"
loadmodule "presence_xml.so"

# No ctl/jsonrpcs module: nothing listens on the default /var/run/kamailio sockets.

modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)

# Registrations in memory only: a restart forgets them (clients must register again).
# use_domain: user1@a.test and user1@b.test are different AORs.
modparam("usrloc", "db_mode", 0)
modparam("usrloc", "use_domain", 1)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 10)
modparam("registrar", "default_expires", 300)

# Digest auth against the subscriber table, read at every check (no cache), so accounts added
# while running work at once. ha1 = md5(user:realm:password), realm = the domain.
modparam("auth", "qop", "auth")
modparam("auth", "nonce_expire", 300)
modparam("auth_db", "db_url", "{db}")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "use_domain", 1)
modparam("auth_db", "load_credentials", "")

# Presence state in memory (subscriptions: subs_db_mode 0; publications: publ_cache 2). The
# modules still insist on a db_url and on the tables' versions.
modparam("presence", "db_url", "{db}")
modparam("presence", "subs_db_mode", 0)
modparam("presence", "publ_cache", 2)
modparam("presence", "db_update_period", 0)
modparam("presence", "clean_period", 10)
modparam("presence", "max_expires", 3600)
modparam("presence_xml", "db_url", "{db}")
# Every watcher is active at once: the bridge decides who may watch whom.
modparam("presence_xml", "force_active", 1)
modparam("presence_xml", "integrated_xcap_server", 0)

request_route {{
    route(REQINIT);

    # A client on TCP gets everything for the host:port of its Via over the connection it
    # opened (force_tcp_alias), so a client that does not listen on TCP itself still
    # receives calls, MESSAGEs and NOTIFYs; tcp_connection_lifetime keeps the connection.
    if (proto == TCP) {{
        force_tcp_alias();
    }}

    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    # Retransmissions are absorbed by the transaction layer.
    if (!is_method("ACK")) {{
        if (t_precheck_trans()) {{
            t_check_trans();
            exit;
        }}
        t_check_trans();
    }}

    route(WITHINDLG);

    # Initial requests from here on.
    remove_hf("Route");
    route(AUTH);
    route(REGISTRAR);
    route(PRESENCE);

    if (is_method("INVITE|SUBSCRIBE|REFER")) {{
        record_route();
    }}
    if ($rU == $null) {{
        sl_send_reply("484", "Address Incomplete");
        exit;
    }}
    route(LOCATION);
}}

route[REQINIT] {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    # The readiness probe and keep-alives: OPTIONS to a server, not a user.
    if (is_method("OPTIONS") && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        xlog("L_WARN", "malformed request from $si:$sp\\n");
        exit;
    }}
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

route[WITHINDLG] {{
    if (!has_totag()) {{
        return;
    }}
    if (loose_route()) {{
        route(RELAY);
        exit;
    }}
    # Refreshes and un-SUBSCRIBEs of a subscription to the presence server itself.
    if (is_method("SUBSCRIBE") && uri == myself) {{
        route(PRESENCE);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    sl_send_reply("404", "Not here");
    exit;
}}

route[AUTH] {{
    # Every domain is ours (loopback only): the realm is the From domain, and a user exists
    # when the subscriber table has (user, domain), so domains added while running work.
    # Only the stack's own probe ({PROBE_DOMAIN}, a reserved name) goes unauthenticated.
    if ($fd == "{PROBE_DOMAIN}" && !is_method("REGISTER")) {{
        return;
    }}
    # 401 for REGISTER, 407 for the rest; "1": the authenticated user must be the From user
    # (the To user too for REGISTER).
    if (!auth_check("$fd", "subscriber", "1")) {{
        auth_challenge("$fd", "1");
        exit;
    }}
    if (!is_method("REGISTER|PUBLISH")) {{
        consume_credentials();
    }}
}}

route[REGISTRAR] {{
    if (!is_method("REGISTER")) {{
        return;
    }}
    if (!save("location")) {{
        sl_reply_error();
    }}
    exit;
}}

route[PRESENCE] {{
    if (!is_method("PUBLISH|SUBSCRIBE")) {{
        return;
    }}
    if (!($hdr(Event) =~ "^presence(\\.winfo)?[[:space:]]*(;.*)?$")) {{
        # Other event packages (refer, dialog, ...) go to the user like any request.
        if (has_totag()) {{
            sl_send_reply("404", "Not here");
            exit;
        }}
        return;
    }}
    if (!t_newtran()) {{
        sl_reply_error();
        exit;
    }}
    if (is_method("PUBLISH")) {{
        handle_publish();
    }} else {{
        handle_subscribe();
    }}
    t_release();
    exit;
}}

route[LOCATION] {{
    if (!lookup("location")) {{
        $var(rc) = $rc;
        t_newtran();
        switch ($var(rc)) {{
            case -1:
            case -3:
                send_reply("404", "Not Found");
                exit;
            case -2:
                send_reply("405", "Method Not Allowed");
                exit;
        }}
    }}
    route(RELAY);
}}
"""


class Kamailio(_caldav_server.ManagedServer):
    """A private Kamailio below ``root`` on UDP+TCP 127.0.0.1:``port`` (see module doc).

    ``users`` maps logins (``user1@example.test`` or ``user1``) to passwords. :meth:`add_user`
    works before start and while running (the next digest check reads the table).
    """

    def __init__(
        self,
        root: Path | str,
        port: int,
        users: Mapping[str, str] | None = None,
        domain: str = DEFAULT_DOMAIN,
        *,
        children: int = 2,
        debug: int = 2,
    ) -> None:
        _check_field(domain, "domain")
        self.root = Path(root).resolve()
        self.port = port
        self.domain = domain.lower()
        self.children = children
        self.debug = debug
        self.users: dict[str, str] = {}  # "user@domain" -> password
        for login, password in (users or {}).items():
            _check_password(password)
            self.users["@".join(_split_login(login, self.domain))] = password
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- paths

    @property
    def config_path(self) -> Path:
        return self.root / "kamailio.cfg"

    @property
    def db_path(self) -> Path:
        return self.root / "kamailio.sqlite"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid_path(self) -> Path:
        return self.runtime_dir / "kamailio.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "kamailio.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def registrar(self) -> tuple[str, int]:
        """Where clients send REGISTER and everything else (UDP or TCP)."""
        return ("127.0.0.1", self.port)

    def aor(self, login: str) -> str:
        """``sip:user1@example.test`` for ``user1`` or ``user1@example.test``."""
        return "sip:{}@{}".format(*_split_login(login, self.domain))

    def is_registered(self, login: str, timeout: float = 1.0) -> bool:
        """Whether ``login`` has a registration: an OPTIONS to its AOR through the proxy gets
        404 at once when not (the proxy answers from usrloc); when registered it is relayed to
        the client, and any answer, or none within ``timeout``, means registered."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("kamailio is not running")
        answer = sip_options(self.port, timeout=timeout, ruri=self.aor(login))
        return answer is None or not answer.startswith((b"SIP/2.0 404", b"SIP/2.0 480"))

    # -- users

    def add_user(self, login: str, password: str) -> str:
        """Add a user or change a password; seen by the next request when running (any
        domain, new ones included).

        Returns the SIP user (digest username); the realm is the login's domain.
        """
        _check_password(password)
        user, domain = _split_login(login, self.domain)
        with self._lock:
            self.users[f"{user}@{domain}"] = password
            if self.db_path.exists():
                with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as db:
                    self._upsert(db, f"{user}@{domain}", password)
                    db.commit()
        return user

    def _upsert(self, db: sqlite3.Connection, address: str, password: str) -> None:
        user, _, domain = address.partition("@")
        db.execute(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (username, domain) DO UPDATE SET "
            "password = excluded.password, ha1 = excluded.ha1, ha1b = excluded.ha1b",
            (
                user,
                domain,
                password,
                ha1(user, domain, password),
                ha1(address, domain, password),
            ),
        )

    def _create_db(self) -> None:
        # A fresh file each start: presence and registrations are in memory anyway, and the
        # subscriber table is rebuilt from self.users.
        tmp = self.db_path.with_name(".kamailio.sqlite.tmp")
        for p in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)
        schema = "".join(
            (KAMAILIO_SQLITE_SCHEMA / f"{name}-create.sql").read_text(encoding="utf-8")
            for name in ("standard", "auth_db", "presence")
        )
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            # One transaction, no fsync: statement by statement it took 0.35 s here.
            db.execute("PRAGMA synchronous = OFF")
            db.executescript(f"BEGIN;\n{schema}\nCOMMIT;")
            for address, password in self.users.items():
                self._upsert(db, address, password)
            db.commit()
            # Readers (Kamailio's workers) never wait for a writer (add_user) in WAL mode.
            db.execute("PRAGMA journal_mode=WAL")
        for s in ("-wal", "-shm", "-journal", ""):
            self.db_path.with_name(self.db_path.name + s).unlink(missing_ok=True)
        tmp.replace(self.db_path)

    # -- lifecycle

    def prepare(self) -> None:
        """Write config and database (idempotent); done by :meth:`start`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(exist_ok=True)
        self.config_path.write_text(_kamailio_cfg(self), encoding="utf-8")
        with self._lock:
            self._create_db()

    def check_config(self) -> None:
        """``kamailio -c``: raise with its output when the generated config is wrong."""
        self.prepare()
        out = subprocess.run(
            [KAMAILIO_BIN, "-c", "-f", str(self.config_path), "-L", str(KAMAILIO_MODULES)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kamailio -c failed:\n{out.stdout}{out.stderr}")

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers OPTIONS; a failure says why, with the log's tail."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        _check_port_free(self.port, "kamailio")
        # -DD: the process we hold stays the main one (no daemon fork), its workers are its
        # children in its own session. -E: log to stderr (else syslog), i.e. the log file.
        self.proc = _caldav_server.launch(
            [KAMAILIO_BIN, "-DD", "-E", "-f", str(self.config_path),
             "-L", str(KAMAILIO_MODULES), "-Y", str(self.runtime_dir),
             "-P", str(self.pid_path), "-w", str(self.root), "-m", "64", "-M", "8"],
            self.log_path, self.root,
        )  # fmt: skip
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll with OPTIONS over UDP, then TCP, until the server answers both."""

        def answers() -> bool:
            # Over TCP too: its receivers are forked after the UDP ones.
            return all(
                (answer := sip_options(self.port, timeout=0.2, transport=t)) is not None
                and answer.startswith(b"SIP/2.0 200")
                for t in ("udp", "tcp")
            )

        _caldav_server.wait_until_ready(self.proc, "kamailio", answers, timeout, self.log_tail)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the main process we started; wait for all its workers and the port."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _stop_group(proc, timeout)
        deadline = time.monotonic() + timeout
        while not _port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again: registrations and presence state are gone, users stay."""
        self.stop(timeout)
        self.start(timeout)

    def describe(self) -> str:
        out = [
            f"Kamailio   sip:127.0.0.1:{self.port} (UDP, TCP)   default domain {self.domain}"
            "   (digest username = user part, realm = domain)"
        ]
        out += [f"  sip:{address}" for address in sorted(self.users)]
        out.append(f"root {self.root}\nlog  {self.log_path}")
        return "\n".join(out)


# --------------------------------------------------------------------------- baresip


class BaresipAccount(NamedTuple):
    """What a baresip far end registers as: ``sip:<user>@<domain>`` via ``registrar``."""

    user: str
    password: str
    domain: str = DEFAULT_DOMAIN
    registrar: str = f"127.0.0.1:{DEFAULT_PORT}"  # host:port of the proxy/registrar

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"


@dataclass(frozen=True)
class CommandResult:
    """The answer to a ctrl_tcp command: ``ok`` and baresip's text output (``data``)."""

    ok: bool
    data: str


class BaresipError(RuntimeError):
    pass


# ANSI colour sequences baresip puts into command output (reginfo's "OK" is green).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode("ascii") + b":" + payload + b","


class _NetstringReader:
    """Splits a byte stream into netstrings ("<len>:<payload>,"), as baresip frames JSON."""

    MAX = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                if len(self._buf) > 10:
                    raise BaresipError(f"bad netstring header: {bytes(self._buf[:20])!r}")
                return out
            header = bytes(self._buf[:colon])
            if not header.isdigit() or int(header) > self.MAX:
                raise BaresipError(f"bad netstring header: {header!r}")
            size = int(header)
            end = colon + 1 + size
            if len(self._buf) < end + 1:
                return out
            if self._buf[end] != ord(","):
                raise BaresipError("netstring without its trailing comma")
            out.append(bytes(self._buf[colon + 1 : end]))
            del self._buf[: end + 1]


class Baresip(_caldav_server.ManagedServer):
    """A headless baresip below ``root``/``name``, registered as ``account``, driven over ctrl_tcp.

    Ports: SIP on UDP and TCP 127.0.0.1:``sip_port`` *and TLS on sip_port + 1* (baresip 1.0
    always opens it, there is no setting to leave it out), ctrl_tcp on 127.0.0.1:``ctrl_port``
    (default sip_port + 2). Audio goes through ``aubridge`` (no sound hardware), codecs G.711.

    ctrl_tcp (baresip 1.0, modules/ctrl_tcp): netstrings ("<len>:<json>,") both ways. A command
    is ``{"command": "dial", "params": "sip:...", "token": "..."}`` (the same verbs as the
    interactive menu: dial, hangup, accept, listcalls, reginfo, ...); the response is
    ``{"response": true, "ok": bool, "data": "<menu text>", "token": "..."}``. Events are
    ``{"event": true, "class": "call"|"register"|..., "type": "CALL_INCOMING"|..., "param":
    ..., "accountaor": ..., "direction": ..., "peeruri": ..., "id": ...}``. baresip takes one
    control connection at a time (a new one replaces the old) and sends events only while one is
    open: this class keeps one open from start to stop and queues the events it reads.
    """

    def __init__(
        self,
        root: Path | str,
        name: str,
        sip_port: int,
        account: BaresipAccount | tuple[str, str, str, str],
        *,
        ctrl_port: int | None = None,
        answermode: str = "auto",
        transport: str = "udp",
        regint: int = 300,
    ) -> None:
        _check_field(name, "name")
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad name {name!r}")
        if answermode not in ("manual", "early", "auto"):
            raise ValueError(f"bad answermode {answermode!r}")
        if transport not in ("udp", "tcp"):
            raise ValueError(f"bad transport {transport!r}")
        self.account = BaresipAccount(*account)
        for value, what in zip(
            self.account, ("user", "password", "domain", "registrar"), strict=True
        ):
            # They go into baresip's accounts line unquoted.
            _check_field(value, what)
            if any(c in value for c in " \t;,<>="):
                raise ValueError(f"baresip {what} must not contain blanks or ;,<>=: {value!r}")
        self.root = Path(root).resolve() / name
        self.name = name
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port if ctrl_port is not None else sip_port + 2
        self.answermode = answermode
        self.transport = transport
        self.regint = regint
        self.proc: subprocess.Popen[bytes] | None = None
        self.event_log: list[dict[str, Any]] = []  # every event read, for diagnostics
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._responses: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._tokens = iter(range(1, 1 << 62))

    # -- paths

    @property
    def config_path(self) -> Path:
        return self.root / "config"

    @property
    def accounts_path(self) -> Path:
        return self.root / "accounts"

    @property
    def log_path(self) -> Path:
        return self.root / "baresip.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def aor(self) -> str:
        return self.account.aor

    # -- config

    def _config_text(self) -> str:
        dev = f"devstack-{self.name}"
        return f"""\
# Generated by deploy/sip_servers.py -- headless baresip far end, controlled over ctrl_tcp.
poll_method		epoll
# UDP and TCP here; baresip also opens TLS on the next port.
sip_listen		127.0.0.1:{self.sip_port}
net_interface		127.0.0.1
call_local_timeout	60
call_max_calls		4
# No sound hardware: aubridge connects this player to the source of the same name.
audio_player		aubridge,{dev}
audio_source		aubridge,{dev}
audio_alert		aubridge,{dev}-alert
audio_path		/usr/share/baresip
# Below the kernel's ephemeral range (32768-60999), where the tests' free ports come from.
rtp_ports		16384-32767
rtp_timeout		0
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_tmp		uuid.so
module_tmp		account.so
# menu: the command verbs (dial, hangup, accept, ...); ctrl_tcp: those verbs as JSON.
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{self.ctrl_port}
statmode_default	off
"""

    def _account_line(self) -> str:
        a = self.account
        host, _, port = a.registrar.rpartition(":")
        proxy = f"sip:{host}:{port};transport={self.transport}"
        return (
            f"<sip:{a.user}@{a.domain};transport={self.transport}>"
            f";auth_pass={a.password};auth_user={a.user}"
            f';outbound="{proxy}";answermode={self.answermode};regint={self.regint}'
            ";mwi=no;pubint=0;call_transfer=yes\n"
        )

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config_text(), encoding="utf-8")
        self.accounts_path.write_text(self._account_line(), encoding="utf-8")
        self.accounts_path.chmod(0o600)
        # baresip writes a default contacts file when there is none; an empty one is enough.
        (self.root / "contacts").touch()

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Start and connect the control channel (registration may still be under way)."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        for port, what in (
            (self.sip_port, "sip"),
            (self.sip_port + 1, "sip tls"),
            (self.ctrl_port, "ctrl_tcp"),
        ):
            _check_port_free(port, f"baresip {self.name} {what}")
        self.event_log.clear()
        self._events = queue.Queue()
        args = [BARESIP_BIN, "-f", str(self.root)]
        self.proc = _caldav_server.launch(args, self.log_path, self.root)
        try:
            self._connect(timeout)
        except BaseException:
            self.stop()
            raise

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"baresip {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"baresip {self.name} ctrl_tcp not up after {timeout}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.02)
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock,), name=f"baresip-{self.name}-ctrl", daemon=True
        )
        self._reader.start()
        # The connection is accepted by the kernel before baresip's loop takes it: a first
        # command's answer proves events will flow from now on.
        self.command("reginfo", timeout=max(1.0, deadline - time.monotonic()))

    def _read_loop(self, sock: socket.socket) -> None:
        reader = _NetstringReader()
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for frame in reader.feed(data):
                    msg = json.loads(frame)
                    if msg.get("response"):
                        box = self._responses.get(str(msg.get("token", "")))
                        if box is not None:
                            box.put(msg)
                    elif msg.get("event"):
                        self.event_log.append(msg)
                        self._events.put(msg)
        except (OSError, ValueError, BaresipError):
            pass
        finally:
            # Wake anyone waiting: the channel is gone.
            self._events.put({"event": True, "type": "_CTRL_CLOSED", "class": "ctrl"})
            for box in list(self._responses.values()):
                box.put({"response": True, "ok": False, "data": "ctrl connection closed"})

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the baresip we started (it un-registers first) and wait."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None:
            self._reader.join(2)
            self._reader = None
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_group(proc, timeout)

    def log_tail(self, lines: int = 30) -> str:
        return _ANSI.sub("", _caldav_server.read_log_tail(self.log_path, lines))

    # -- control

    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> CommandResult:
        """Run one ctrl_tcp command and return its answer (``ok`` false is not raised)."""
        sock = self._sock
        if sock is None:
            raise BaresipError(f"baresip {self.name} is not running")
        token = f"{self.name}-{next(self._tokens)}"
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        self._responses[token] = box
        msg: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            msg["params"] = params
        try:
            with self._send_lock:
                sock.sendall(_netstring(json.dumps(msg).encode()))
            try:
                reply = box.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"baresip {self.name}: no answer to {name!r} in {timeout}s"
                ) from None
        finally:
            self._responses.pop(token, None)
        return CommandResult(bool(reply.get("ok")), _ANSI.sub("", str(reply.get("data", ""))))

    def events(self, timeout: float) -> Iterator[dict[str, Any]]:
        """Events as they arrive, until ``timeout`` seconds pass without one being wanted.

        Consumes them: an event yielded and not kept is gone (``event_log`` keeps all).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ev = self._events.get(timeout=left)
            except queue.Empty:
                return
            if ev.get("type") == "_CTRL_CLOSED":
                self._events.put(ev)  # stays visible to the next waiter
                raise BaresipError(f"baresip {self.name} ctrl connection closed")
            yield ev

    def wait_event(self, type_: str, timeout: float = 10.0, **match: str) -> dict[str, Any]:
        """The next event of type ``type_`` (with the given fields equal), skipping others."""
        for ev in self.events(timeout):
            if ev.get("type") == type_ and all(ev.get(k) == v for k, v in match.items()):
                return ev
        seen = [e.get("type") for e in self.event_log[-20:]]
        raise TimeoutError(
            f"baresip {self.name}: no {type_} {match or ''} in {timeout}s; "
            f"last events {seen}\n{self.log_tail(15)}"
        )

    def registered(self) -> bool:
        """True when ``reginfo`` shows the account registered (OK). baresip's own view: after a
        Kamailio restart it stays OK until the next refresh (see :meth:`reregister`)."""
        out = self.command("reginfo").data
        return any(self.aor in line and " OK " in f"{line} " for line in out.splitlines())

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the registrar accepted the REGISTER (polls ``reginfo``: the REGISTER_OK
        event may come before the control connection is open)."""
        deadline = time.monotonic() + timeout
        while not self.registered():
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"baresip {self.name} is not running:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"baresip {self.name} not registered after {timeout}s:\n"
                    f"{self.command('reginfo').data}\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def reregister(self, timeout: float = 10.0) -> None:
        """Register again now and wait for it (e.g. after a Kamailio restart, which forgets
        registrations while baresip would wait for its next refresh): deletes and re-creates
        the user agent (``uadel`` + ``uanew``), which ends its calls."""
        self._checked("uadel", self.aor)
        self._checked("uanew", self._account_line().strip())
        self.wait_registered(timeout)

    def dial(self, uri: str) -> CommandResult:
        return self._checked("dial", uri)

    def accept(self) -> CommandResult:
        return self._checked("accept")

    def hangup(self) -> CommandResult:
        return self._checked("hangup")

    def list_calls(self) -> str:
        return self._checked("listcalls").data

    def _checked(self, name: str, params: str | None = None) -> CommandResult:
        result = self.command(name, params)
        if not result.ok:
            raise BaresipError(f"baresip {self.name}: {name} failed: {result.data}")
        return result

    def describe(self) -> str:
        return (
            f"baresip {self.name}  {self.aor}  sip 127.0.0.1:{self.sip_port} "
            f"({self.transport})  ctrl_tcp 127.0.0.1:{self.ctrl_port}  log {self.log_path}"
        )


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="sip_servers.py", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("port", type=int, help="Kamailio's UDP and TCP port on 127.0.0.1")
    parser.add_argument("users", nargs="*", metavar="LOGIN:PASSWORD")
    parser.add_argument("--domain", default=DEFAULT_DOMAIN)
    parser.add_argument(
        "--baresip",
        action="append",
        default=[],
        metavar="LOGIN:PASSWORD",
        help="also run an auto-answering baresip far end registered as LOGIN (repeatable)",
    )
    args = parser.parse_args(argv)
    users = dict(u.split(":", 1) for u in args.users)
    if not users:
        # The dev stack's demo accounts; devstack.py sits beside this file.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from devstack import DEMO_ACCOUNTS

        users = {a.address: a.password for a in DEMO_ACCOUNTS}
    far = [tuple(spec.split(":", 1)) for spec in args.baresip]
    kam = Kamailio(args.root, args.port, users, args.domain)
    phones: list[Baresip] = []

    def start() -> str:
        kam.start()
        described = [kam.describe()]
        for login, password in far:
            user = kam.add_user(login, password)
            phone = Baresip(
                args.root,
                f"baresip-{user}",
                free_port_run(3),
                (user, password, kam.domain, f"127.0.0.1:{kam.port}"),
            )
            phones.append(phone)
            phone.start()
            phone.wait_registered()
            described.append(phone.describe())
        return "\n".join(described)

    def stop() -> None:
        for phone in phones:
            phone.stop()
        kam.stop()

    result: int = _caldav_server.run_until_signalled("kamailio", start, stop)
    return result


if __name__ == "__main__":
    sys.exit(main())
