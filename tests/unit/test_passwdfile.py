"""The passwd-file provisioner without Dovecot: account names, the file format, the files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adapters.passwdfile import PasswdFileProvisioner
from adapters.passwdfile import passwd as pw
from bridge import config
from bridge.errors import BridgeError, ErrorKind

DOMAIN = "example.test"


@pytest.mark.parametrize(
    ("account", "local"),
    [
        ("alice@example.test", "alice"),
        ("Alice@Example.Test", "alice"),
        ("bob", "bob"),
        ("a.b_c-d9", "a.b_c-d9"),
        ("_x", "_x"),
        ("x" * 64, "x" * 64),
    ],
)
def test_valid_names(account: str, local: str) -> None:
    assert pw.local_part(account, DOMAIN) == local


@pytest.mark.parametrize(
    "account",
    [
        "", "@example.test", "../etc@example.test", "a/b@example.test", ".hidden@example.test",
        "dot.@example.test", "a..b@example.test", "a b@example.test", "a:b@example.test",
        "ünï@example.test", "x" * 65, "alice@other.test", "alice@example.test@example.test",
        "a\nb", ".", "..",
    ],
)  # fmt: skip
def test_invalid_names_are_refused(account: str) -> None:
    with pytest.raises(BridgeError) as caught:
        pw.local_part(account, DOMAIN)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize("password", ["", "a:b", "a\nb", "a\rb", "a\0b", "x" * 257])
def test_unstorable_passwords_are_refused(password: str) -> None:
    with pytest.raises(BridgeError):
        pw.check_password(password)


@pytest.mark.parametrize(
    "address", ["nobody", "a@b", "a b@example.test", "<a@example.test>", "a@ex:ample.test"]
)
def test_bad_recovery_addresses_are_refused(address: str) -> None:
    with pytest.raises(BridgeError):
        pw.check_recovery(address)


def test_recovery_address_forms() -> None:
    assert pw.check_recovery(" someone@example.org ") == "someone@example.org"
    assert pw.check_recovery("") == ""


def test_format_is_devstacks() -> None:
    # deploy/devstack.py Dovecot._write_user writes exactly this line.
    entry = pw.new_entry("alice@example.test", "secret", "Alice A")
    assert pw.format_entry(entry) == "alice@example.test:{PLAIN}secret:::Alice A:::\n"


@pytest.mark.parametrize(
    "line",
    [
        "alice@example.test:{PLAIN}secret:::Alice A:::\n",
        "alice@example.test:{PLAIN}secret:1000:1000:Alice:/home/a:/bin/sh:quota_rule=*:bytes=1M\n",
    ],
)
def test_parse_format_round_trip(line: str) -> None:
    entry = pw.parse_entry(line)
    assert entry.plain_password == "secret"
    assert pw.format_entry(entry) == line
    changed = pw.format_entry(entry.with_password("new"))
    assert changed == line.replace("{PLAIN}secret", "{PLAIN}new")


def test_stored_schemes() -> None:
    assert pw.parse_entry("a@x:{plain}p:::::\n").plain_password == "p"
    assert pw.parse_entry("a@x:bare:::::\n").plain_password == "bare"  # passdb scheme=PLAIN
    assert pw.parse_entry("a@x:{SHA512-CRYPT}$6$abc:::::\n").plain_password is None
    assert pw.parse_entry("# comment\n\na@x:{PLAIN}p\n").plain_password == "p"
    with pytest.raises(ValueError):
        pw.parse_entry("# only a comment\n")


@pytest.fixture
def provisioner(tmp_path: Path) -> PasswdFileProvisioner:
    return PasswdFileProvisioner(DOMAIN, tmp_path / DOMAIN)


async def test_signup_writes_one_file_per_user(provisioner: PasswdFileProvisioner) -> None:
    await provisioner.signup("alice@example.test", "secret", "Alice A", None)
    path = provisioner.directory / "alice"
    assert path.read_text() == "alice@example.test:{PLAIN}secret:::Alice A:::\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(provisioner.directory.stat().st_mode) == 0o750
    assert [p.name for p in provisioner.directory.iterdir()] == ["alice"]  # no temp file left
    assert await provisioner.recover_password("alice@example.test") is None
    assert await provisioner.real_name("alice@example.test") == "Alice A"
    await provisioner.signup("nameless", "secret", None, None)
    for unknown in ("nameless", "ghost", "../alice", "alice@elsewhere.test"):
        assert await provisioner.real_name(unknown) is None


async def test_signup_refuses_existing_and_path_tricks(provisioner: PasswdFileProvisioner) -> None:
    await provisioner.signup("bob", "one", None, None)
    with pytest.raises(BridgeError) as caught:
        await provisioner.signup("BOB@example.test", "two", None, None)
    assert caught.value.kind is ErrorKind.ALREADY_EXISTS
    assert (provisioner.directory / "bob").read_text().startswith("bob@example.test:{PLAIN}one:")
    for name in ("../bob", ".bob.recovery", "bob@elsewhere.test"):
        with pytest.raises(BridgeError) as caught:
            await provisioner.signup(name, "x", None, None)
        assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert sorted(p.name for p in provisioner.directory.parent.iterdir()) == [DOMAIN]


async def test_change_password(provisioner: PasswdFileProvisioner) -> None:
    await provisioner.signup("carol", "old", "Carol", "carol@example.org")
    path = provisioner.directory / "carol"
    before = path.stat()
    with pytest.raises(BridgeError) as caught:
        await provisioner.change_password("carol", "wrong", "new", None)
    assert caught.value.kind is ErrorKind.AUTH_FAILED
    with pytest.raises(BridgeError) as caught:
        await provisioner.change_password("nobody", "old", "new", None)
    assert caught.value.kind is ErrorKind.AUTH_FAILED
    await provisioner.change_password("carol", "old", "new", None)
    assert path.read_text() == "carol@example.test:{PLAIN}new:::Carol:::\n"
    # Same size: only a different mtime makes Dovecot reload it.
    assert int(path.stat().st_mtime) != int(before.st_mtime)
    recovery = await provisioner.recover_password("carol@example.test")
    assert recovery is not None
    assert (recovery.address, recovery.password) == ("carol@example.org", "new")
    await provisioner.change_password("carol", "new", None, "")
    assert await provisioner.recover_password("carol") is None
    await provisioner.change_password("carol", "new", None, "c2@example.org")
    assert (provisioner.directory / ".carol.recovery").read_text() == "c2@example.org\n"


async def test_hashed_password_cannot_be_changed_or_mailed(
    provisioner: PasswdFileProvisioner,
) -> None:
    provisioner.directory.mkdir()
    (provisioner.directory / "dave").write_text("dave@example.test:{SHA512-CRYPT}$6$x:::::\n")
    (provisioner.directory / ".dave.recovery").write_text("dave@example.org\n")
    with pytest.raises(BridgeError) as caught:
        await provisioner.change_password("dave", "x", "y", None)
    assert caught.value.kind is ErrorKind.NOT_SUPPORTED
    assert await provisioner.recover_password("dave") is None
    assert await provisioner.recover_password("../dave") is None


async def test_stale_recovery_sidecar_is_dropped_at_signup(
    provisioner: PasswdFileProvisioner,
) -> None:
    provisioner.directory.mkdir()
    (provisioner.directory / ".erin.recovery").write_text("old-owner@example.org\n")
    await provisioner.signup("erin", "pw", None, None)
    assert await provisioner.recover_password("erin") is None


async def test_new_files_take_the_folders_owner(provisioner: PasswdFileProvisioner) -> None:
    provisioner.directory.mkdir(mode=0o750)
    os.chown(provisioner.directory, 0, 1)
    await provisioner.signup("frank", "pw", None, "frank@example.org")
    for name in ("frank", ".frank.recovery"):
        st = (provisioner.directory / name).stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1, 0o640)


def test_provisioning_settings() -> None:
    settings = config.loads(
        """
[domains."example.test".provisioning]
kind = "passwd-file"
directory = "/srv/users/example.test"
signup = true
recovery_smtp_port = 25
"""
    )
    provisioning = settings.domains["example.test"].provisioning
    assert provisioning == config.ProvisioningSettings(
        kind="passwd-file", directory="/srv/users/example.test", signup=True,
        recovery_smtp_port=25, delay=1.0,
    )  # fmt: skip
    assert config.loads('[domains."a.test"]\n').domains["a.test"].provisioning.kind == ""
    with pytest.raises(config.ConfigError):
        config.loads('[domains."a.test".provisioning]\nkind = "ldap"\n')


def test_passwd_file_needs_a_directory() -> None:
    with pytest.raises(config.ConfigError):
        PasswdFileProvisioner.from_settings(DOMAIN, config.ProvisioningSettings(kind="passwd-file"))
