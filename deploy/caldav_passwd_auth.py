# Runs inside the dev stack's Radicale process (pasted into caldav_server.py's launcher before
# Radicale starts): a Radicale auth plugin, registered as module "devstack_passwd_auth", that
# checks logins against Dovecot's per-user passwd-files, <DEVSTACK_PASSWD_DIR>/<domain>/<local>,
# first line "address:{PLAIN}password:...". So the mail accounts are CalDAV's accounts too, with
# no copy to keep in step. Standard library and Radicale only.
import hmac as _hmac
import os as _os
import re as _re
import sys as _sys
import types as _types

import radicale.auth as _radicale_auth

_SAFE = _re.compile(r"[a-z0-9_+-][a-z0-9._+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*\Z")


class _PasswdFileAuth(_radicale_auth.BaseAuth):
    def _login(self, login: str, password: str) -> str:
        login = login.lower()
        if not _SAFE.match(login):
            return ""
        local, _, domain = login.partition("@")
        path = _os.path.join(_os.environ["DEVSTACK_PASSWD_DIR"], domain, local)
        try:
            with open(path, encoding="utf-8") as users:
                fields = users.readline().rstrip("\n").split(":")
        except OSError:
            return ""
        if len(fields) < 2 or fields[0].lower() != login:
            return ""
        stored = fields[1]
        if stored[:7].upper() == "{PLAIN}":
            stored = stored[7:]
        elif stored.startswith("{"):
            return ""  # a hash: the dev stack writes {PLAIN} only
        return login if _hmac.compare_digest(stored.encode(), password.encode()) else ""


_plugin = _types.ModuleType("devstack_passwd_auth")
_plugin.Auth = _PasswdFileAuth  # type: ignore[attr-defined]
_sys.modules["devstack_passwd_auth"] = _plugin
