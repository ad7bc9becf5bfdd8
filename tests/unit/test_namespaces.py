from __future__ import annotations

import pytest

from adapters.imap.namespaces import Namespaces
from adapters.imap.wire import Atom
from bridge.errors import BridgeError

DOVECOT = Namespaces(personal_prefix="", separator="/", other_prefix="shared/")
DOTTED = Namespaces(personal_prefix="INBOX.", separator=".", other_prefix="user.",
                    other_separator=".")  # fmt: skip


def test_from_namespace_response() -> None:
    values = [[[b"", b"/"]], [[b"shared/", b"/"]], None]
    assert Namespaces.from_response(values) == DOVECOT


def test_personal_names() -> None:
    assert DOVECOT.to_server("Отчёты") == "&BB4EQgRHBFEEQgRL-"
    assert DOVECOT.to_client("&BB4EQgRHBFEEQgRL-") == "Отчёты"
    assert DOTTED.to_server("Projects/2026 Plans") == "INBOX.Projects.2026 Plans"
    assert DOTTED.to_client("INBOX.Projects.2026 Plans") == "Projects/2026 Plans"
    assert DOTTED.to_server("INBOX") == "INBOX"


def test_other_users() -> None:
    assert DOVECOT.to_server("~user2@example.test/INBOX") == "shared/user2@example.test/INBOX"
    assert DOVECOT.to_client("shared/user2@example.test/INBOX") == "~user2@example.test/INBOX"
    assert DOVECOT.to_client("shared/user2@example.test") == "~user2@example.test"
    assert DOVECOT.to_client("shared") is None
    assert DOTTED.to_server("~bob@x.test/Sent") == "user.bob@x.test.Sent"


def test_own_account_through_tilde_is_personal() -> None:
    assert DOVECOT.to_server("~me@x.test/Sent", own_account="me@x.test") == "Sent"
    assert DOVECOT.to_server("~me@x.test", own_account="me@x.test") == "INBOX"


def test_separator_inside_a_name_is_refused() -> None:
    with pytest.raises(BridgeError):
        DOTTED.to_server("a.b")


def test_nil_separator_and_missing_other_namespace() -> None:
    values = [[[Atom("INBOX."), None]], None, None]
    parsed = Namespaces.from_response(values)
    assert parsed.other_prefix is None and parsed.separator == "/"
    assert parsed.personal_prefix == "INBOX."
