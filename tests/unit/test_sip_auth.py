"""Digest authentication: the RFC test vectors, nonce reuse and nc counting, stale handling."""

from __future__ import annotations

import pytest

from adapters.sip.auth import Challenge, Credentials, DigestAuth, challenges_of, digest_response
from adapters.sip.headers import SipParseError, unquote

MUFASA = Credentials("Mufasa", "Circle Of Life")


def _params(header: str) -> dict[str, str]:
    _, _, rest = header.partition(" ")
    out = {}
    for part in rest.split(", "):
        name, _, value = part.partition("=")
        out[name] = unquote(value)
    return out


def test_rfc2617_vector() -> None:
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = digest_response(challenge, MUFASA, "GET", "/dir/index.html", nc=1, cnonce="0a4f113b")
    params = _params(header)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["qop"] == "auth" and params["nc"] == "00000001"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    challenge = Challenge.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    header = digest_response(
        challenge, Credentials("Mufasa", "Circle of Life"), "GET", "/dir/index.html",
        nc=1, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert _params(header)["response"] == expected


def test_challenge_parsing() -> None:
    challenge = Challenge.parse(
        'Digest realm="a, b", nonce="n,1", stale=TRUE, algorithm=md5', "Proxy-Authenticate"
    )
    assert challenge.realm == "a, b" and challenge.nonce == "n,1" and challenge.stale
    assert challenge.algorithm == "MD5" and challenge.qop == () and challenge.supported
    assert not Challenge.parse('Basic realm="x", nonce="y"').supported
    with pytest.raises(SipParseError):
        Challenge.parse('Digest realm="x"')
    assert challenges_of(407, ['Digest realm="r", nonce="n"', "garbage"])[0].header == (
        "Proxy-Authenticate"
    )
    assert challenges_of(200, ['Digest realm="r", nonce="n"']) == []


def test_no_qop_answer_has_no_nc() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n"')
    params = _params(digest_response(challenge, MUFASA, "REGISTER", "sip:r", nc=1, cnonce="c"))
    assert "nc" not in params and "qop" not in params


def test_nonce_reuse_counts_and_stale_and_wrong_password() -> None:
    counter = iter(range(100))
    auth = DigestAuth(MUFASA, cnonce=lambda: f"c{next(counter)}")
    assert auth.headers_for("REGISTER", "sip:r") == []
    first = Challenge.parse('Digest realm="r", nonce="n1", qop="auth"')
    assert auth.accept([first])
    ((name, value),) = auth.headers_for("REGISTER", "sip:r")
    assert name == "Authorization" and _params(value)["nc"] == "00000001"
    # Later requests reuse the nonce with the next count and a fresh cnonce.
    ((_, again),) = auth.headers_for("MESSAGE", "sip:bob@r")
    assert _params(again)["nc"] == "00000002" and _params(again)["cnonce"] == "c1"
    # The same nonce refused again without stale: the password is wrong.
    assert not auth.accept([first])
    # stale=true: same credentials, new nonce, count from 1.
    stale = Challenge.parse('Digest realm="r", nonce="n2", qop="auth", stale=true')
    assert auth.accept([stale])
    ((_, fresh),) = auth.headers_for("REGISTER", "sip:r")
    assert _params(fresh)["nonce"] == "n2" and _params(fresh)["nc"] == "00000001"
    # A proxy challenge adds Proxy-Authorization beside Authorization.
    assert auth.accept([Challenge.parse('Digest realm="p", nonce="x"', "Proxy-Authenticate")])
    names = sorted(name for name, _ in auth.headers_for("INVITE", "sip:bob@r"))
    assert names == ["Authorization", "Proxy-Authorization"]
    auth.forget()
    assert auth.headers_for("INVITE", "sip:bob@r") == []


def test_unusable_challenges_are_refused() -> None:
    auth = DigestAuth(MUFASA)
    assert not auth.accept([Challenge.parse('Digest realm="r", nonce="n", algorithm=SHA-1')])
    assert not auth.accept([Challenge.parse('Digest realm="r", nonce="n", qop="other"')])
    assert auth.accept([Challenge.parse('Digest realm="r", nonce="n", qop="auth-int"')])
    ((_, value),) = auth.headers_for("MESSAGE", "sip:x", b"body")
    assert _params(value)["qop"] == "auth-int"
