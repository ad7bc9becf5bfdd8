"""spellerList, spellerCheck, readStrings and cliExecute through a running bridge."""

from __future__ import annotations

from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import call, request

UserClient = tuple[XimssClient, devstack.Account]


def vocabulary(reply_strings: list[etree._Element]) -> dict[str, object]:
    (answer,) = reply_strings
    out: dict[str, object] = {}
    for child in answer:
        if child.tag == "string":
            out[child.get("name")] = child.text or ""
        else:
            assert child.tag == "strings"
            out[child.get("name")] = {s.get("name"): s.text or "" for s in child}
    return out


async def test_speller_list(user_client: UserClient) -> None:
    client, _ = user_client
    reply = await call(client, "spellerList", {})
    names = [s.get("speller") for s in reply.of("speller")]
    assert {"English", "German", "French"} <= set(names)


async def test_speller_check_reports_byte_positions_and_guesses(user_client: UserClient) -> None:
    client, _ = user_client
    element = request("spellerCheck", {"id": client.next_id(), "speller": "English"})
    # Sent as "&amp;": positions count in the decoded text, where it is one byte.
    element.text = "Grüße aus Köln & the qiuck brown fox jumpd"
    reply = await client.send(element)
    assert reply.ok, xml.serialize(reply.response)
    decoded = element.text.encode()
    reports = {
        decoded[int(r.get("position")) : int(r.get("position")) + int(r.get("size"))].decode(): r
        for r in reply.of("spellerReport")
    }
    assert reports["qiuck"].get("position") == str(decoded.index(b"qiuck"))
    assert reports["jumpd"].get("position") == str(decoded.index(b"jumpd"))
    assert reports["jumpd"].get("size") == "5"
    assert "quick" in [g.text for g in reports["qiuck"].findall("guess")]
    assert all(r.get("id") == reply.response.get("id") for r in reply.of("spellerReport"))


async def test_speller_check_errors(user_client: UserClient) -> None:
    client, _ = user_client
    unknown = await client.send(
        request("spellerCheck", {"id": client.next_id(), "speller": "Klingon"})
    )
    assert unknown.error_num == "512"
    big = request("spellerCheck", {"id": client.next_id(), "speller": "English"})
    big.text = "word " * 20_000
    assert (await client.send(big)).error_num == "552"


async def test_speller_needs_login(client: XimssClient) -> None:
    reply = await client.send(request("spellerList", {"id": client.next_id()}))
    assert reply.error_num == "530"


async def test_read_strings_english_and_fallback(client: XimssClient) -> None:
    reply = await call(client, "readStrings", {})
    (answer,) = reply.of("strings")
    assert answer.get("language") == "English"
    english = vocabulary(reply.of("strings"))
    assert english["AppendButton"] == "Append"
    assert english["AppendModes"] == {"simple": "Simple Mode", "advanced": "Advanced Mode"}
    assert english["MonthNames"]["Jan"] == "January"  # type: ignore[index]
    assert english["MailboxNames"]["INBOX"] == "Inbox"  # type: ignore[index]

    unknown = await call(client, "readStrings", {"language": "Klingon"})
    assert unknown.of("strings")[0].get("language") == "English"
    assert vocabulary(unknown.of("strings")) == english


async def test_read_strings_follows_the_language_preference(user_client: UserClient) -> None:
    client, _ = user_client
    settings = xml.element("newSettings")
    xml.sub(settings, "Language", text="German")
    await call(client, "prefsStore", {}, settings)
    reply = await call(client, "readStrings", {})
    assert reply.of("strings")[0].get("language") == "German"
    assert vocabulary(reply.of("strings"))["MonthNames"]["Mar"] == "März"  # type: ignore[index]
    explicit = await call(client, "readStrings", {"language": "english"})
    assert explicit.of("strings")[0].get("language") == "English"


async def test_cli_execute_is_refused(user_client: UserClient) -> None:
    client, _ = user_client
    element = request("cliExecute", {"id": client.next_id()})
    element.text = "LISTDOMAINS"
    reply = await client.send(element)
    assert reply.error_num == "502"
    assert reply.response.get("errorText") == "the bridge has no administrator CLI"
