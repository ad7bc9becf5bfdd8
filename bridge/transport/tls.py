"""The server-side TLS context shared by every listener: the implicit-TLS XIMSS port, `starttls`
on the plain port, and HTTPS.

Built once at start-up so a bad certificate stops the bridge with a clear message instead of
failing each handshake later.
"""

from __future__ import annotations

import ssl
from typing import Final

from bridge.config import ConfigError, TlsSettings

MIN_VERSIONS: Final = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server context with the configured certificate; raises ConfigError when it cannot load."""
    if not settings.configured:
        raise ConfigError("tls.cert_file and tls.key_file are both needed")
    # Python's default server context brings its vetted cipher list (forward-secret suites,
    # no SHA-1) and server cipher preference; we only tighten it. Compression is already off there
    # (CRIME); it is set again so that this file states it.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_VERSIONS[settings.min_version]
    context.options |= ssl.OP_NO_COMPRESSION
    # Client-initiated renegotiation (TLS 1.2) costs the server a handshake per request: refuse it.
    context.options |= ssl.OP_NO_RENEGOTIATION
    for name in ("cert_file", "key_file"):
        path = getattr(settings, name)
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"tls.{name}: cannot read {path}: {exc.strerror}") from exc
    try:
        # An encrypted key would make OpenSSL prompt on the terminal; an empty password makes it
        # fail instead, which start-up reports.
        context.load_cert_chain(settings.cert_file, settings.key_file, password=lambda: b"")
    except ssl.SSLError as exc:
        raise ConfigError(
            f"tls: cannot load {settings.cert_file} with {settings.key_file}: they must be a PEM "
            f"certificate (chain) and its unencrypted private key ({exc.reason or exc})"
        ) from exc
    return context
