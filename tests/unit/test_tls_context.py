"""The server TLS context: the configured minimum version, no compression, clear start-up errors."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.app import Bridge
from bridge.transport.tls import server_context
from tests.selfsigned import Certificate, make_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def tls(certificate: Certificate, **changes: Any) -> config.TlsSettings:
    base = config.TlsSettings(str(certificate.cert_file), str(certificate.key_file))
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("min_version", "expected"),
    [("1.2", ssl.TLSVersion.TLSv1_2), ("1.3", ssl.TLSVersion.TLSv1_3)],
)
def test_minimum_version_and_options(
    certificate: Certificate, min_version: str, expected: ssl.TLSVersion
) -> None:
    context = server_context(tls(certificate, min_version=min_version))
    assert context.minimum_version == expected
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.verify_mode == ssl.CERT_NONE  # clients authenticate with XIMSS logins


def test_missing_file_names_the_setting(certificate: Certificate, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(config.ConfigError, match=r"tls\.key_file: cannot read .*nope\.pem"):
        server_context(tls(certificate, key_file=str(missing)))


def test_key_that_does_not_match(certificate: Certificate, tmp_path: Path) -> None:
    other = make_certificate(tmp_path)
    with pytest.raises(config.ConfigError, match="must be a PEM certificate"):
        server_context(tls(certificate, key_file=str(other.key_file)))
    with pytest.raises(config.ConfigError, match="must be a PEM certificate"):
        server_context(tls(certificate, cert_file=str(certificate.key_file)))


def test_encrypted_key_fails_instead_of_prompting(certificate: Certificate, tmp_path: Path) -> None:
    locked = tmp_path / "locked.pem"
    subprocess.run(
        ["openssl", "pkey", "-in", str(certificate.key_file), "-aes256", "-passout", "pass:x",
         "-out", str(locked)],
        check=True, capture_output=True,
    )  # fmt: skip
    with pytest.raises(config.ConfigError, match="unencrypted private key"):
        server_context(tls(certificate, key_file=str(locked)))


def test_tls_port_without_certificate_stops_start_up() -> None:
    settings = config.loads('[tcp]\ntls_port = 11025\n[domains."example.test".imap]\nport = 1\n')
    with pytest.raises(config.ConfigError, match=r"tcp\.tls_port needs"):
        Bridge(settings)
