"""The retrieveXML network guard: URL allowlist matching and address vetting, no network."""

from __future__ import annotations

import ipaddress

import pytest

from bridge import netguard
from bridge.errors import BridgeError, ErrorKind

ALLOW = ("https://feeds.example.com/news/", "http://data.example.org:8080/xml")


def kind_of(url: str, allowlist: tuple[str, ...] = ALLOW) -> ErrorKind | None:
    try:
        netguard.check_url(url, allowlist)
    except BridgeError as exc:
        return exc.kind
    return None


@pytest.mark.parametrize(
    "url",
    [
        "https://feeds.example.com/news/",
        "https://feeds.example.com/news/today.xml",
        "https://feeds.example.com/news/today.xml?lang=en",
        "https://feeds.example.com:443/news/a.xml",  # the default port, spelled out
        "HTTPS://FEEDS.EXAMPLE.COM/news/a.xml",  # scheme and host are case-insensitive
        "https://feeds.example.com./news/a.xml",  # the fully qualified form of the same name
        "https://feeds.example.com/news/a.xml#part",
        "http://data.example.org:8080/xml",
        "http://data.example.org:8080/xml/sub/doc",
    ],
)
def test_allowlisted_urls_pass(url: str) -> None:
    assert kind_of(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://feeds.example.com/news/a.xml",  # scheme differs
        "https://feeds.example.com:8443/news/a.xml",  # port differs
        "https://feeds.example.com/NEWS/a.xml",  # paths are case-sensitive
        "https://feeds.example.com/newsx/a.xml",
        "https://feeds.example.com/",
        "https://feeds.example.com.evil.test/news/a.xml",
        "https://evil.test/news/a.xml",
        "https://xfeeds.example.com/news/a.xml",
        "https://sub.feeds.example.com/news/a.xml",
        "https://feeds.example.com@evil.test/news/a.xml",  # userinfo: the host is evil.test
        "https://evil.test@feeds.example.com/news/a.xml",  # userinfo is refused even when allowed
        "https://user:pw@feeds.example.com/news/a.xml",
        "http://data.example.org/xml",  # port 80, not 8080
        "http://data.example.org:8080/xmlevil",  # prefix without slash ends on a segment
        "ftp://feeds.example.com/news/a.xml",
        "file:///etc/passwd",
        "gopher://feeds.example.com/news/",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    assert kind_of(url) is ErrorKind.PERMISSION


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://feeds.example.com/news/../secret",
        "https://feeds.example.com/news/%2e%2e/secret",
        "https://feeds.example.com/news/%2E%2E%2Fsecret",
        "https://feeds.example.com/news/./a.xml",
        "https://feeds.example.com/news/..%5csecret",
        "https://feeds.example.com\\@evil.test/news/",
        "https://feeds.example.com/news/a b.xml",
        "https://feeds.example.com/news/\n",
        "https://feeds.example.com/news/é.xml",
        "https://feeds.example.com:99999/news/",
        "https://feeds.example.com:port/news/",
        "https:///news/",
        "https://[fe80::1%25eth0]/news/",
    ],
)
def test_malformed_or_ambiguous_urls_are_bad_requests(url: str) -> None:
    assert kind_of(url) is ErrorKind.BAD_REQUEST


def test_target_is_normalised() -> None:
    target = netguard.check_url("HTTPS://Feeds.Example.COM./news/a.xml?x=1#frag", ALLOW)
    assert target == netguard.Target("https", "feeds.example.com", 443, "/news/a.xml", "x=1")
    assert target.url == "https://feeds.example.com:443/news/a.xml?x=1"


def test_ipv6_literal_urls() -> None:
    allow = ("http://[2001:4860::8888]:8080/",)
    target = netguard.check_url("http://[2001:4860:0:0::8888]:8080/doc", allow)
    assert target.host == "2001:4860::8888"
    assert kind_of("http://[2001:4860::8889]:8080/doc", allow) is ErrorKind.PERMISSION


def test_invalid_allowlist_entries_admit_nothing() -> None:
    allow = ("not a url", "ftp://feeds.example.com/", "https://feeds.example.com/?q=1", "")
    assert kind_of("https://feeds.example.com/a", allow) is ErrorKind.PERMISSION
    assert kind_of("https://feeds.example.com/a", ()) is ErrorKind.PERMISSION


PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888"]
NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "10.0.0.1",  # private
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # link-local (cloud metadata)
    "100.64.0.1",  # shared address space (carrier NAT)
    "0.0.0.0",  # unspecified
    "0.1.2.3",  # "this network"
    "224.0.0.1",  # multicast
    "224.0.1.1",  # globally scoped multicast is still multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",  # loopback
    "::",  # unspecified
    "fe80::1",  # link-local
    "fe80::1%1",  # with a scope, as getaddrinfo reports it
    "fec0::1",  # site-local (deprecated)
    "fc00::1",  # unique local
    "fd12:3456::1",
    "ff02::1",  # multicast
    "ff0e::1",
    "2001:db8::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses(text: str) -> None:
    assert netguard.is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_non_public_addresses(text: str) -> None:
    assert not netguard.is_public(ipaddress.ip_address(text))


def test_mapped_public_address_is_public() -> None:
    assert netguard.is_public(ipaddress.ip_address("::ffff:8.8.8.8"))
    assert netguard.is_public(ipaddress.ip_address("2002:808:808::1"))


TARGET = netguard.Target("http", "feeds.example.com", 8080, "/")


def refusal(addresses: list[str], allow_private: tuple[str, ...] = ()) -> ErrorKind | None:
    try:
        netguard.vet_addresses(TARGET, addresses, allow_private)
    except BridgeError as exc:
        return exc.kind
    return None


def test_public_addresses_are_vetted_once_each() -> None:
    vetted = netguard.vet_addresses(TARGET, ["8.8.8.8", "8.8.8.8", "2606:4700::1111"], ())
    assert [str(a) for a in vetted] == ["8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_one_private_address_refuses_all(text: str) -> None:
    assert refusal(["8.8.8.8", text]) is ErrorKind.PERMISSION
    assert refusal([text, "8.8.8.8"]) is ErrorKind.PERMISSION


def test_unusable_or_no_addresses() -> None:
    assert refusal(["not-an-ip"]) is ErrorKind.PERMISSION
    assert refusal([]) is ErrorKind.BACKEND_UNAVAILABLE


@pytest.mark.parametrize(
    "entry", ["feeds.example.com:8080", "FEEDS.example.com.:8080", " feeds.example.com:8080 "]
)
def test_allow_private_opts_in_one_host_and_port(entry: str) -> None:
    assert refusal(["127.0.0.1", "10.0.0.1"], (entry,)) is None


@pytest.mark.parametrize(
    "entry", ["feeds.example.com", "feeds.example.com:80", "example.com:8080", "127.0.0.1:8080", ""]
)
def test_allow_private_needs_the_exact_host_and_port(entry: str) -> None:
    assert refusal(["127.0.0.1"], (entry,)) is ErrorKind.PERMISSION


def test_allow_private_ipv6_literal() -> None:
    target = netguard.Target("http", "::1", 8080, "/")
    assert netguard.vet_addresses(target, ["::1"], ("[::1]:8080",))
    with pytest.raises(BridgeError):
        netguard.vet_addresses(target, ["::1"], ("[::1]:8081",))
