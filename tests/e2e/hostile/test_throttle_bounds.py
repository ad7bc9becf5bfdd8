"""The throttle's own rules, on a fake clock: the sliding window, the Retry-After it computes,
IPv6 addresses counted by /64, and memory bounded by the number of keys it tracks."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.config import LimitSettings
from bridge.errors import ErrorKind
from bridge.throttle import LoginThrottle, LoginThrottled, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**changes: object) -> tuple[LoginThrottle, Clock]:
    wanted: dict[str, object] = {
        "login_failures_per_account": 3, "login_failures_per_ip": 5,
        "login_failure_window": 60.0, **changes,
    }  # fmt: skip
    limits = dataclasses.replace(LimitSettings(), **wanted)  # type: ignore[arg-type]
    clock = Clock()
    return LoginThrottle(lambda: limits, clock), clock


def test_sliding_window_and_retry_after() -> None:
    throttle, clock = make()
    for at in (1000.0, 1010.0, 1030.0):
        clock.now = at
        throttle.check("a@x", "10.0.0.1", "tcp")
        throttle.failed("a@x", "10.0.0.1")
    clock.now = 1040.0
    with pytest.raises(LoginThrottled) as early:
        throttle.check("a@x", None, "tcp")
    assert early.value.retry_after == 20  # when the failure of 1000 leaves the window
    clock.now = 1059.5
    with pytest.raises(LoginThrottled) as refused:
        throttle.check("A@X", None, "tcp")  # account names compare case-insensitively
    assert refused.value.kind is ErrorKind.LIMIT
    assert refused.value.retry_after == 1
    assert refused.value.detail == "too many failed logins, try again in 1 s"
    clock.now = 1060.0
    throttle.check("a@x", None, "tcp")
    # A success clears the account, not the address.
    throttle.failed("a@x", "10.0.0.1")
    throttle.failed("b@x", "10.0.0.1")
    throttle.succeeded("a@x")
    throttle.check("a@x", None, "tcp")
    throttle.failed("c@x", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        throttle.check("d@x", "10.0.0.1", "http")


def test_zero_disables_a_limit() -> None:
    throttle, _ = make(login_failures_per_account=0, login_failures_per_ip=0)
    for _ in range(100):
        throttle.failed("a@x", "10.0.0.1")
    throttle.check("a@x", "10.0.0.1", "tcp")
    assert throttle.tracked == 0


def test_memory_is_bounded_by_the_key_cap() -> None:
    throttle, clock = make(login_throttle_keys=1000)
    for index in range(100_000):
        throttle.failed(f"user{index}@x", f"10.{index >> 16}.{(index >> 8) & 255}.{index & 255}")
    assert throttle.tracked == 2000
    # The most recent keys are the ones kept.
    for _ in range(2):
        throttle.failed("user99999@x", None)
    with pytest.raises(LoginThrottled):
        throttle.check("user99999@x", None, "tcp")
    throttle.check("user0@x", None, "tcp")
    clock.now += 61
    throttle.check("user99999@x", None, "tcp")


@pytest.mark.parametrize(
    ("peer", "with_port", "key"),
    [
        ("127.0.0.1:5555", True, "127.0.0.1"),
        ("127.0.0.1", False, "127.0.0.1"),
        ("2001:db8:1:2:3:4:5:6:443", True, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", False, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", False, "192.0.2.7"),
        ("-", False, "-"),
    ],
)
def test_client_address(peer: str, with_port: bool, key: str) -> None:
    assert client_address(peer, with_port=with_port) == key
