"""Failed-login throttling, per account and per client address, for every login path.

A sliding window: the failures of the last `[limits] login_failure_window` seconds are counted
per account and per client address. Once an account has `login_failures_per_account` of them, or
an address `login_failures_per_ip`, further logins for it are refused before they reach the mail
server (LoginThrottled: LIMIT, "too many failed logins, try again in N s") until the oldest
counted failure leaves the window. Refused attempts are not failures: the lock ends at most one
window after the last real guess. A successful login clears its account's failures, not its
address's (one valid account must not let an address keep guessing others).

The counters live in this process (replicas each count their own: a client spread over N
replicas gets N times the tries) and are bounded: at most `login_throttle_keys` accounts and as
many addresses are tracked, the least recently failed forgotten first.
"""

from __future__ import annotations

import ipaddress
import math
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from bridge import metrics
from bridge.config import LimitSettings
from bridge.errors import BridgeError, ErrorKind

if TYPE_CHECKING:
    from bridge.services import Services

# IPv6 clients usually hold a whole /64: counting each address apart would let one client
# rotate through billions of them.
IPV6_PREFIX: Final = 64


class LoginThrottled(BridgeError):
    """A login refused by the throttle; `retry_after` is whole seconds (HTTP Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(ErrorKind.LIMIT, f"too many failed logins, try again in {retry_after} s")
        self.retry_after = retry_after


class _Window:
    """Failure times per key, newest last; each key keeps at most `limit` of them."""

    def __init__(self) -> None:
        self._keys: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def wait(self, key: str, limit: int, window: float, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        times = self._keys.get(key)
        if times is None or limit <= 0:
            return 0.0
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._keys[key]
            return 0.0
        if len(times) < limit:
            return 0.0
        # The limit-th newest failure leaving the window brings the count under the limit.
        return times[-limit] + window - now

    def add(self, key: str, limit: int, now: float, max_keys: int) -> None:
        if limit <= 0:
            return
        times = self._keys.get(key)
        if times is None or times.maxlen != limit:
            times = deque(times or (), maxlen=limit)
            self._keys[key] = times
        times.append(now)
        self._keys.move_to_end(key)
        while len(self._keys) > max(1, max_keys):
            self._keys.popitem(last=False)

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)


class LoginThrottle:
    def __init__(
        self,
        limits: Callable[[], LimitSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A getter: SIGHUP replaces the settings and the next login sees the new limits.
        self._limits = limits
        self._clock = clock
        self._accounts = _Window()
        self._addresses = _Window()

    @property
    def tracked(self) -> int:
        return len(self._accounts) + len(self._addresses)

    def check(self, account: str | None, address: str | None, transport: str) -> None:
        """Raise LoginThrottled when this account or address must wait (None: not known yet)."""
        limits = self._limits()
        now = self._clock()
        window = limits.login_failure_window
        scopes = (
            ("account", self._accounts, account, limits.login_failures_per_account),
            ("ip", self._addresses, address, limits.login_failures_per_ip),
        )
        for scope, table, key, limit in scopes:
            if not key:
                continue
            wait = table.wait(key.lower(), limit, window, now)
            if wait > 0:
                metrics.LOGINS_THROTTLED.labels(transport, scope).inc()
                raise LoginThrottled(max(1, math.ceil(wait)))

    def failed(self, account: str | None, address: str | None) -> None:
        limits = self._limits()
        now = self._clock()
        cap = limits.login_throttle_keys
        if account:
            self._accounts.add(account.lower(), limits.login_failures_per_account, now, cap)
        if address:
            self._addresses.add(address.lower(), limits.login_failures_per_ip, now, cap)

    def succeeded(self, account: str) -> None:
        self._accounts.clear(account.lower())


# One per Services (a test process may run several bridges), made at first use.
_THROTTLES: weakref.WeakKeyDictionary[Services, LoginThrottle] = weakref.WeakKeyDictionary()


def for_services(services: Services) -> LoginThrottle:
    throttle = _THROTTLES.get(services)
    if throttle is None:
        throttle = _THROTTLES[services] = LoginThrottle(lambda: services.settings.limits)
    return throttle


def client_address(peer: str, *, with_port: bool) -> str:
    """The throttling key of a peer: its IP address ("host:port" on TCP, "host" on HTTP), an
    IPv6 one cut to its /64."""
    host = peer.rpartition(":")[0] if with_port else peer
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # "-" or a unix socket: one key for all of them
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
