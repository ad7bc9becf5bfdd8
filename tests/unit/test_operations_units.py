"""The pure parts of graceful operations: what a reload applies or keeps, log line formats, and
the probe plan check-config runs."""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import sys

from bridge import config, logs, probes, reload

BASE = """
[tcp]
port = 11024
[limits]
max_frame_bytes = 1000
[domains."example.test".imap]
port = 143
"""


def test_merge_applies_live_settings_and_keeps_the_restart_only_ones() -> None:
    running = config.loads(BASE)
    loaded = config.loads(
        BASE.replace("port = 11024", "port = 12000").replace("= 1000", "= 2000")
        + '[state]\nbackend = "redis"\n[domains."other.test".smtp]\nhost = "mx"\n'
    )
    merged, kept = reload.merge(running, loaded)
    assert merged.limits.max_frame_bytes == 2000
    assert merged.tcp.port == 11024 and merged.state.backend == "sqlite"
    assert sorted(kept) == ["state", "tcp.port"]
    assert set(merged.domains) == {"example.test", "other.test"}
    assert reload.differences(running, merged) == [
        "limits.max_frame_bytes",
        "domains.other.test",
    ]


def test_merge_keeps_tls_off_when_a_reload_turns_it_on() -> None:
    running = config.loads(BASE)
    loaded = dataclasses.replace(running, tls=config.TlsSettings("cert.pem", "key.pem"))
    merged, kept = reload.merge(running, loaded)
    assert not merged.tls.configured and kept == ["tls (turning TLS on or off)"]


def _record(message: str, *, exc: bool = False) -> logging.LogRecord:
    record = logging.LogRecord("bridge.test", logging.INFO, __file__, 1, message, (), None)
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            record.exc_info = sys.exc_info()
    logs.ContextFilter().filter(record)
    return record


def test_json_lines_carry_the_context_of_the_work() -> None:
    def in_session() -> logging.LogRecord:
        logs.bind_peer("127.0.0.1:5000")
        logs.bind_session("123456-SecretTailThatMustNotBeLogged", "a@example.test")
        return _record("hello", exc=True)

    record = contextvars.copy_context().run(in_session)
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["session"] == "123456" and entry["account"] == "a@example.test"
    assert entry["peer"] == "127.0.0.1:5000" and entry["message"] == "hello"
    assert entry["level"] == "INFO" and entry["logger"] == "bridge.test"
    assert "ValueError: boom" in entry["exception"]
    assert "SecretTail" not in json.dumps(entry)
    outside = json.loads(logs.JsonFormatter().format(_record("plain")))
    assert "session" not in outside and "peer" not in outside


def test_text_lines_append_the_session_once() -> None:
    def in_session(message: str) -> str:
        logs.bind_session("654321-x", "b@example.test")
        return logs.TextFormatter().format(_record(message))

    assert (
        contextvars.copy_context()
        .run(in_session, "hi")
        .endswith("INFO bridge.test hi session=654321")
    )
    assert (
        contextvars.copy_context()
        .run(in_session, "session=654321 ended")
        .endswith("session=654321 ended")
    )


def test_probe_plan_follows_the_domains_backends() -> None:
    settings = config.loads(
        BASE
        + '[domains."example.test".smtp]\nhost = "127.0.0.1"\n'
        + '[domains."example.test".sip]\nhost = "127.0.0.1"\ntransport = "tcp"\n'
        + '[state]\nbackend = "redis"\nurl = "redis://:hunter2@127.0.0.1:6390/0"\n'
    )
    planned = [(p.scope, p.kind, p.target) for p in probes.plan(settings)]
    assert planned == [
        ("example.test", "IMAP", "127.0.0.1:143"),
        ("example.test", "SMTP", "127.0.0.1:587"),
        ("example.test", "SIP", "127.0.0.1:5060/tcp"),
        ("state", "Redis", "redis://***@127.0.0.1:6390/0"),
    ]
    failed = probes.Result(probes.plan(settings)[0], "connection refused")
    assert failed.line() == "failed  example.test IMAP 127.0.0.1:143: connection refused"
