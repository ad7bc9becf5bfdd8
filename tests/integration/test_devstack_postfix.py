"""The dev stack's private Postfix (deploy/devstack.py): submission, delivery to Dovecot, DSN.

Uses the session stack of tests/conftest.py; every test that counts or waits for mail in a
mailbox finds it by its own Message-ID, so tests sharing the stack never see each other's mail.
"""

from __future__ import annotations

import email
import imaplib
import secrets
import smtplib
import ssl
import time
import tomllib
from email.message import Message

from bridge import config
from tests.conftest import devstack

USER1 = devstack.DEMO_ACCOUNTS[0]
USER2 = devstack.DEMO_ACCOUNTS[1]


def submission(stack: devstack.DevStack, account: devstack.Account | None) -> smtplib.SMTP:
    """A connection to the submission port, logged in as ``account`` when given."""
    smtp = smtplib.SMTP("127.0.0.1", stack.ports.submission, timeout=10)
    smtp.ehlo("client.example.test")
    if account is not None:
        smtp.login(account.address, account.password)
    return smtp


def compose(sender: str, recipient: str, subject: str) -> tuple[str, str]:
    """A small message and its Message-ID (unique, so the test can find it again)."""
    message_id = f"<{secrets.token_hex(8)}@client.example.test>"
    text = (
        f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 06 Jan 2025 09:15:00 +0000\r\n\r\n"
        "Sent through the dev stack's Postfix.\r\n"
    )
    return text, message_id


def wait_for_message(
    stack: devstack.DevStack, account: devstack.Account, criteria: str, timeout: float
) -> Message:
    """Poll ``account``'s INBOX until exactly one message matches the IMAP SEARCH ``criteria``."""
    imap = imaplib.IMAP4("127.0.0.1", stack.ports.imap, timeout=10)
    try:
        imap.login(account.address, account.password)
        imap.select("INBOX", readonly=True)
        deadline = time.monotonic() + timeout
        while True:
            imap.noop()
            typ, data = imap.search(None, criteria)
            assert typ == "OK", data
            numbers = data[0].split()
            if numbers:
                assert len(numbers) == 1, numbers
                typ, fetched = imap.fetch(numbers[0].decode(), "(BODY.PEEK[])")
                assert typ == "OK" and isinstance(fetched[0], tuple), fetched
                return email.message_from_bytes(fetched[0][1])
            assert time.monotonic() < deadline, (
                f"no message matching {criteria} for {account.address} after {timeout}s\n"
                + stack.postfix.log_tail()
            )
            time.sleep(0.05)
    finally:
        imap.logout()


def test_submission_delivers_to_dovecot(stack: devstack.DevStack) -> None:
    text, message_id = compose(USER1.address, USER2.address, "Hello through Postfix")
    with submission(stack, USER1) as smtp:
        assert smtp.esmtp_features["auth"].strip().upper() == "PLAIN"
        assert smtp.sendmail(USER1.address, [USER2.address], text) == {}
    got = wait_for_message(stack, USER2, f'HEADER Message-ID "{message_id}"', timeout=5)
    assert got["Subject"] == "Hello through Postfix"
    # Delivered by LMTP from our Postfix, with the login recorded by the submission service.
    received = " ".join(got.get_all("Received", []))
    assert devstack.SMTP_HOSTNAME in received
    assert "Authenticated sender: user1@example.test" in received


def test_unknown_local_recipient_refused_at_rcpt(stack: devstack.DevStack) -> None:
    for port in (stack.ports.submission, stack.ports.smtp):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("client.example.test")
            if port == stack.ports.submission:
                smtp.login(USER1.address, USER1.password)
            assert smtp.mail(USER1.address)[0] == 250
            code, reply = smtp.rcpt("nobody@example.test")
            assert code == 550, reply
            assert b"5.1.1" in reply


def test_smtp_port_takes_mail_for_our_domains_without_auth(stack: devstack.DevStack) -> None:
    account = stack.new_account("mx")
    text, message_id = compose("someone@example.org", account.address, "From outside")
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.ehlo("mx.example.org")
        assert "auth" not in smtp.esmtp_features
        assert smtp.sendmail("someone@example.org", [account.address], text) == {}
    wait_for_message(stack, account, f'HEADER Message-ID "{message_id}"', timeout=5)


def test_unauthenticated_relay_refused(stack: devstack.DevStack) -> None:
    # Port-25 style: mail for other domains is never relayed.
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.ehlo("client.example.test")
        assert smtp.mail(USER1.address)[0] == 250
        code, reply = smtp.rcpt("someone@example.org")
        assert code == 554 and b"Relay access denied" in reply, (code, reply)
    # Submission without AUTH: nothing at all, not even for our own domain.
    with submission(stack, None) as smtp:
        assert smtp.mail(USER1.address)[0] == 250
        for recipient in ("someone@example.org", USER2.address):
            code, reply = smtp.rcpt(recipient)
            assert 500 <= code < 600, (recipient, code, reply)


def test_authenticated_mail_to_other_domains_accepted(stack: devstack.DevStack) -> None:
    # Accepted (and discarded: the dev stack sends nothing off loopback).
    text, _ = compose(USER1.address, "friend@example.org", "To the outside")
    with submission(stack, USER1) as smtp:
        assert smtp.sendmail(USER1.address, ["friend@example.org"], text) == {}


def test_starttls_offered_then_auth(stack: devstack.DevStack) -> None:
    context = ssl.create_default_context(cafile=str(stack.postfix.cert_path))
    with submission(stack, None) as smtp:
        assert smtp.has_extn("starttls")
        smtp.starttls(context=context)  # the certificate names 127.0.0.1
        smtp.ehlo("client.example.test")
        smtp.login(USER1.address, USER1.password)


def test_dsn_success_report_lands_in_senders_inbox(stack: devstack.DevStack) -> None:
    sender, recipient = stack.new_account("dsnfrom"), stack.new_account("dsnto")
    text, message_id = compose(sender.address, recipient.address, "Please confirm")
    envelope_id = secrets.token_hex(6)
    with submission(stack, sender) as smtp:
        assert smtp.has_extn("dsn")
        refused = smtp.sendmail(
            sender.address,
            [recipient.address],
            text,
            mail_options=["RET=HDRS", f"ENVID={envelope_id}"],
            rcpt_options=["NOTIFY=SUCCESS"],
        )
        assert refused == {}
    wait_for_message(stack, recipient, f'HEADER Message-ID "{message_id}"', timeout=5)
    report = wait_for_message(stack, sender, 'HEADER Content-Type "multipart/report"', timeout=10)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    # message/delivery-status: per-message fields, then one group per recipient.
    fields = [dict(group.items()) for group in status.get_payload() if isinstance(group, Message)]
    assert len(fields) == 2, status.as_string()
    assert fields[0]["Original-Envelope-Id"] == envelope_id
    assert fields[1]["Final-Recipient"].lower() == f"rfc822; {recipient.address}"
    assert fields[1]["Action"] == "delivered"  # not "relayed": lmtp_assume_final
    assert fields[1]["Status"].startswith("2.")


def test_new_account_receives_at_once(stack: devstack.DevStack) -> None:
    # A session open across the change: its smtpd opened the table before the account existed.
    with submission(stack, USER1) as smtp:
        t0 = time.monotonic()
        account = stack.new_account("fresh")
        added = time.monotonic() - t0
        assert added < 1, added
        assert smtp.noop()[0] == 250
    text, message_id = compose(USER1.address, account.address, "Welcome aboard")
    with submission(stack, USER1) as smtp:  # the next connection knows the account
        assert smtp.sendmail(USER1.address, [account.address], text) == {}
    wait_for_message(stack, account, f'HEADER Message-ID "{message_id}"', timeout=5)


def test_new_account_in_a_new_domain(stack: devstack.DevStack) -> None:
    # A domain the stack did not serve yet: main.cf is rewritten and Postfix reloaded.
    name = f"x{secrets.token_hex(4)}@other{secrets.token_hex(2)}.test"
    account = stack.add_account(name, "otherpass")
    text, message_id = compose(USER1.address, account.address, "Another domain")
    deadline = time.monotonic() + 5
    while True:  # the reload is asynchronous: smtpd processes restart when next idle
        with submission(stack, USER1) as smtp:
            try:
                assert smtp.sendmail(USER1.address, [account.address], text) == {}
                break
            except smtplib.SMTPRecipientsRefused:
                assert time.monotonic() < deadline
        time.sleep(0.05)
    wait_for_message(stack, account, f'HEADER Message-ID "{message_id}"', timeout=5)


def test_bridge_config_points_at_submission(stack: devstack.DevStack) -> None:
    text = stack.bridge_config_toml(11024)
    smtp = tomllib.loads(text)["domains"]["example.test"]["smtp"]
    assert smtp == {
        "host": "127.0.0.1",
        "port": stack.ports.submission,
        "starttls": False,
        "timeout": 30,
    }
    settings = config.loads(text)  # the bridge's own parser takes every key
    domain = settings.domains["example.test"]
    assert (domain.smtp.host, domain.smtp.port) == ("127.0.0.1", stack.ports.submission)
    assert domain.smtp.starttls is False
