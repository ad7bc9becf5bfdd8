"""Prometheus metrics, in one registry of our own (so tests can start several bridges).

Names follow Prometheus conventions: `_total` counters, `_seconds` histograms. Labels are bounded
sets (operation names from the dispatch table, transports, outcomes, IMAP command names), never
user data.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# `_created` timestamps double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

SESSIONS = Gauge(
    "ximss_bridge_sessions", "Live sessions by transport", ["transport"], registry=REGISTRY
)
LOGINS = Counter(
    "ximss_bridge_logins_total", "Login attempts by outcome", ["transport", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
REQUESTS = Counter(
    "ximss_bridge_requests_total",
    "Requests by operation and outcome (ok or the error kind)",
    ["transport", "operation", "outcome"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "ximss_bridge_request_seconds", "Request processing time by operation", ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)  # fmt: skip
BACKEND_COMMANDS = Counter(
    "ximss_bridge_backend_commands_total",
    "Backend round trips by backend, command and outcome",
    ["backend", "command", "outcome"],
    registry=REGISTRY,
)
BACKEND_SECONDS = Histogram(
    "ximss_bridge_backend_seconds", "Backend round-trip time by backend", ["backend"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)  # fmt: skip
BACKEND_ERRORS = Counter(
    "ximss_bridge_backend_errors_total", "Backend connection failures and timeouts",
    ["backend", "kind"], registry=REGISTRY,
)  # fmt: skip
CACHE_LOOKUPS = Counter(
    "ximss_bridge_cache_lookups_total", "Cache lookups by cache and result (hit or miss)",
    ["cache", "result"], registry=REGISTRY,
)  # fmt: skip
LOGINS_THROTTLED = Counter(
    "ximss_bridge_logins_throttled_total",
    "Logins refused before the mail server by the failed-login throttle, by scope (account, ip)",
    ["transport", "scope"], registry=REGISTRY,
)  # fmt: skip
HTTP_REQUESTS = Counter(
    "ximss_bridge_http_requests_total", "HTTP requests by endpoint kind and status",
    ["endpoint", "status"], registry=REGISTRY,
)  # fmt: skip


def exposition() -> bytes:
    return generate_latest(REGISTRY)
