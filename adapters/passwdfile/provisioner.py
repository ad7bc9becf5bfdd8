"""Provisioning into Dovecot passwd-files, one file per user: `<directory>/<local part>`.

The layout deploy/devstack.py uses (`passdb { driver = passwd-file; args = ... users/%Ld/%Ln }`).
Each file is written beside and renamed into place, so Dovecot never reads half a line; a new
account is created with link(2), which fails if the name exists, so two signups of one name
cannot both win, in this process or another. New files get the folder's owner and group and mode
0640 (devstack: root and the "dovecot" group, whose auth process reads them); a rewritten file
keeps the old one's. The recovery address lives in a sidecar file `.<local part>.recovery` (local
parts cannot start with a dot, so it never shadows an account): passwd-file extra fields would
reach Dovecot's userdb as settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from adapters.passwdfile import passwd as pw
from adapters.protocols import PasswordRecovery
from bridge.config import ConfigError, ProvisioningSettings
from bridge.errors import BridgeError, ErrorKind

P = ParamSpec("P")
T = TypeVar("T")

FILE_MODE = 0o640
# Seconds past Dovecot's next whole second before a changed password counts as seen.
RELOAD_MARGIN = 0.1
FOLDER_MODE = 0o750


class PasswdFileProvisioner:
    def __init__(self, domain: str, directory: Path) -> None:
        self.domain = domain.lower()
        self.directory = directory
        # Orders this process's read-modify-write cycles; creation itself is atomic (link).
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, domain: str, settings: ProvisioningSettings) -> PasswdFileProvisioner:
        if not settings.directory:
            raise ConfigError(
                f"domain {domain}: provisioning.directory is required for passwd-file"
            )
        return cls(domain, Path(settings.directory))

    async def signup(
        self, account: str, password: str, real_name: str | None, recovery: str | None
    ) -> None:
        local = pw.local_part(account, self.domain)
        entry = pw.new_entry(
            f"{local}@{self.domain}",
            pw.check_password(password),
            pw.check_real_name(real_name or ""),
        )
        address = pw.check_recovery(recovery or "")
        async with self._lock:
            await _io(self._create, local, pw.format_entry(entry))
            if address:
                await _io(self._write_recovery, local, address)

    async def change_password(
        self, account: str, old: str, new: str | None, recovery: str | None
    ) -> None:
        local = pw.local_part(account, self.domain)
        if new is not None:
            pw.check_password(new)
        address = None if recovery is None else pw.check_recovery(recovery)
        async with self._lock:
            entry = await _io(self._read, local)
            if entry is None:
                raise BridgeError(ErrorKind.AUTH_FAILED)
            stored = entry.plain_password
            if stored is None:
                raise BridgeError(
                    ErrorKind.NOT_SUPPORTED, "the stored password cannot be checked by the bridge"
                )
            if not hmac.compare_digest(stored.encode(), old.encode()):
                raise BridgeError(ErrorKind.AUTH_FAILED)
            if new is not None and new != stored:
                await _io(self._replace, local, pw.format_entry(entry.with_password(new)))
                await _until_reloaded()
            if address is not None:
                await _io(self._write_recovery, local, address)

    async def recover_password(self, account: str) -> PasswordRecovery | None:
        try:
            local = pw.local_part(account, self.domain)
        except BridgeError:
            return None
        entry = await _io(self._read, local)
        if entry is None or entry.plain_password is None:
            return None
        address = await _io(self._read_recovery, local)
        return PasswordRecovery(address, entry.plain_password) if address else None

    async def real_name(self, account: str) -> str | None:
        try:
            local = pw.local_part(account, self.domain)
            entry = await _io(self._read, local)
        except BridgeError:
            return None
        return (entry.gecos or None) if entry is not None else None

    # -- blocking file work (run in a thread)

    def _path(self, local: str) -> Path:
        return self.directory / local

    def _recovery_path(self, local: str) -> Path:
        return self.directory / f".{local}.recovery"

    def _read(self, local: str) -> pw.PasswdEntry | None:
        try:
            return pw.parse_entry(self._path(local).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None

    def _read_recovery(self, local: str) -> str:
        try:
            return self._recovery_path(local).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""

    def _folder(self) -> os.stat_result:
        if not self.directory.is_dir():
            parent = self.directory.parent.stat()
            self.directory.mkdir(mode=FOLDER_MODE)
            _chown(self.directory, parent.st_uid, parent.st_gid)
        return self.directory.stat()

    def _temp(self, text: str, uid: int, gid: int, mode: int) -> Path:
        fd, name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            _chown(tmp, uid, gid)
            tmp.chmod(mode)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _create(self, local: str, text: str) -> None:
        folder = self._folder()
        tmp = self._temp(text, folder.st_uid, folder.st_gid, FILE_MODE)
        try:
            # link() refuses an existing name: the check and the creation are one step.
            os.link(tmp, self._path(local))
        except FileExistsError as exc:
            raise BridgeError(ErrorKind.ALREADY_EXISTS, "the account already exists") from exc
        finally:
            tmp.unlink(missing_ok=True)
        # A stale sidecar of a removed account must not give the new one a recovery address.
        self._recovery_path(local).unlink(missing_ok=True)

    def _replace(self, local: str, text: str) -> None:
        path = self._path(local)
        old = path.stat()
        tmp = self._temp(text, old.st_uid, old.st_gid, old.st_mode & 0o7777)
        # Dovecot reloads a passwd-file only when its mtime (whole seconds) or size changed:
        # a new password of the same length written within the same second would go unseen.
        os.utime(tmp, (old.st_mtime - 1, old.st_mtime - 1))
        tmp.replace(path)

    def _write_recovery(self, local: str, address: str) -> None:
        path = self._recovery_path(local)
        if not address:
            path.unlink(missing_ok=True)
            return
        folder = self._folder()
        tmp = self._temp(address + "\n", folder.st_uid, folder.st_gid, FILE_MODE)
        tmp.replace(path)


async def _io(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """File work off the event loop, its OSErrors translated at this boundary."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except OSError as exc:
        raise BridgeError(
            ErrorKind.BACKEND_UNAVAILABLE, "the account store cannot be written"
        ) from exc


async def _until_reloaded() -> None:
    """Wait until Dovecot uses the new file. It re-stats a passwd-file on the first lookup in a
    new second of its clock (whole seconds), so a lookup in the second of the write may still
    have read the old one; from the next second on the new one is used. Answering only then
    lets the session submit with the new password at once."""
    now = time.time()
    await asyncio.sleep(math.ceil(now) - now + RELOAD_MARGIN)


def _chown(path: Path, uid: int, gid: int) -> None:
    # Only root can give a file away; anyone else's files are theirs (and the folder's group
    # applies through the setgid bit where the operator set one).
    if os.geteuid() == 0:
        with contextlib.suppress(PermissionError):
            os.chown(path, uid, gid)
