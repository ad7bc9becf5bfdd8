"""XMAP codec: every request shape of xmap-0.90.txt parsed, every response shape built, the flag
and error tables, and round trips. Shapes are quoted from the text with their line numbers;
placeholders that cannot be values as they stand (`MessageHandle="Handle"`, `MessageFlags="FLAGS"`)
are filled with a number and flag words by `_fill`."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import XIMSS_ERRORS, BridgeError, ErrorKind
from bridge.xmap import commands as c
from bridge.xmap import responses as r
from bridge.xmap.codec import (
    COMMANDS,
    MAX_HANDLE,
    MAX_PATH_CHARS,
    Blob,
    command_to_element,
    decode,
    parse_command,
    request_attrs,
)
from bridge.xmap.errors import XMAP_ERRORS, CodecError, error_element, error_for, wire_error
from bridge.xmap.flags import (
    FLAG_TABLE,
    XmapFlag,
    format_flags,
    imap_flags,
    message_status,
    parse_flags,
    xmap_flags,
)
from bridge.xmap.framing import Decoder, Malformed, encode_command
from bridge.xmap.text import clean

R, N, A, F, D = (
    XmapFlag.READ,
    XmapFlag.NEW,
    XmapFlag.ANSWERED,
    XmapFlag.FORWARDED,
    XmapFlag.DRAFT,
)


def _fill(shape: str) -> str:
    for placeholder in ('"Handle"', '"MessageHandle"', '"Existing Message Handle"'):
        shape = shape.replace("=" + placeholder, '="7"')
    return shape.replace('MessageFlags="FLAGS"', 'MessageFlags="READ ANSWERED"')


def _parse(shape: str, blob: bytes | None = None) -> c.Command:
    """Through the real decoder: the text's shape, its zero byte, and the blob if any."""
    wire = _fill(shape).encode() + b"\x00"
    if blob is not None:
        wire += b"{%d}\r\n" % len(blob) + blob
    (event,) = Decoder().feed(wire)
    return decode(event)


# --- requests, lines 69-157 --------------------------------------------------------------------

# The 22 commands of lines 47-68, in the text's order.
TEXT_COMMANDS = [
    "LISTALLFOLDERS", "LISTFOLDER", "GETFILE", "GETMESSAGE", "DELETEFILE", "DELETEMESSAGE",
    "DELETEITEMS", "EMPTYFOLDER", "MOVEFILE", "MOVEMESSAGE", "MOVEITEMS", "COPYFILE",
    "COPYMESSAGE", "COPYITEMS", "NEWFILEUPLOAD", "NEWMESSAGEUPLOAD", "UPDATEMESSAGEUPLOAD",
    "UPDATEFILEUPLOAD", "CREATEFOLDER", "RENAMEFOLDER", "MOVEFOLDER", "SENDMAIL",
]  # fmt: skip


def test_the_table_holds_the_texts_commands_login_and_two_extensions() -> None:
    assert list(COMMANDS) == ["LOGIN", *TEXT_COMMANDS, "DELETEFOLDER", "RENAMEFILE"]
    assert all(name == spec.build.COMMAND for name, spec in COMMANDS.items())  # type: ignore[attr-defined]


FP = "Full Path"
SIMPLE_SHAPES: list[tuple[int, str, c.Command]] = [
    (75, "<LISTALLFOLDERS/>", c.ListAllFolders()),
    (78, '<LISTFOLDER Name="TargetFolder"/>', c.ListFolder("TargetFolder")),
    (81, '<GETFILE Name="Full Path"/>', c.GetFile(FP)),
    (84, '<GETMESSAGE MessageHandle="Handle"/>', c.GetMessage(7)),
    (87, '<DELETEFILE Name="Full Path"/>', c.DeleteFile(FP)),
    (90, '<DELETEMESSAGE MessageHandle="Handle"/>', c.DeleteMessage(7)),
    (
        93,
        '<DELETEITEMS>\n<DELETEMESSAGE MessageHandle="MessageHandle"/>\n'
        '<DELETEFILE Name="Full Path"/>\n</DELETEITEMS>',
        c.DeleteItems((c.DeleteMessage(7), c.DeleteFile(FP))),
    ),
    (99, '<EMPTYFOLDER Name="Full Path"/>', c.EmptyFolder(FP)),
    (102, '<MOVEFILE Name="Full Path" TargetFolder="Full Path"/>', c.MoveFile(FP, FP)),
    (105, '<MOVEMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>', c.MoveMessage(7, FP)),
    (
        108,
        '<MOVEITEMS>\n<MOVEMESSAGE MessageHandle="MessageHandle" TargetFolder="Full Path"/>\n'
        '<MOVEFILE Name="Full Path" TargetFolder="Full Path"/>\n</MOVEITEMS>',
        c.MoveItems((c.MoveMessage(7, FP), c.MoveFile(FP, FP))),
    ),
    (114, '<COPYFILE Name="Full Path" TargetFolder="Full Path"/>', c.CopyFile(FP, FP)),
    # Line 117 reads TargetFolder=Full Path" (no opening quote): not XML; the item row has it.
    (117, '<COPYMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>', c.CopyMessage(7, FP)),
    (
        120,
        '<COPYITEMS>\n<COPYMESSAGE MessageHandle="MessageHandle" TargetFolder="Full Path"/>\n'
        '<COPYFILE Name="Full Path" TargetFolder="Full Path"/>\n</COPYITEMS>',
        c.CopyItems((c.CopyMessage(7, FP), c.CopyFile(FP, FP))),
    ),
    (146, '<CREATEFOLDER Name="Full Path"/>', c.CreateFolder(FP)),
    (149, '<RENAMEFOLDER Name="Full Path" Destination="Full Path"/>', c.RenameFolder(FP, FP)),
    (152, '<MOVEFOLDER Name="Full Path" Destination="Full Path"/>', c.MoveFolder(FP, FP)),
    (
        0,
        '<LOGIN UserName="joe@example.com" Password="secret"/>',
        c.Login("joe@example.com", "secret"),
    ),
]


@pytest.mark.parametrize(("line", "shape", "expected"), SIMPLE_SHAPES)
def test_request_shapes(line: int, shape: str, expected: c.Command) -> None:
    assert _parse(shape) == expected
    assert COMMANDS[expected.COMMAND].line == line


BLOB = b"BLOB DATA\x00\xff"
RW = frozenset({R, A})
# The upload shapes exactly as the text writes them (closed twice, PI between), lines 126-157.
UPLOAD_SHAPES: list[tuple[int, str, c.Command]] = [
    (
        126,
        '<NEWFILEUPLOAD Name="Full Path" TargetFolder="Full Path"/>\n<?GOREALLYSLOW?>\n'
        "</NEWFILEUPLOAD>",
        c.NewFileUpload(FP, FP, BLOB),
    ),
    (
        131,
        '<NEWMESSAGEUPLOAD TargetFolder="Full Path" MessageFlags="FLAGS"/>\n<?GOREALLYSLOW?>\n'
        "</NEWMESSAGEUPLOAD>",
        c.NewMessageUpload(FP, RW, BLOB),
    ),
    (
        136,
        '<UPDATEMESSAGEUPLOAD MessageHandle="Handle" MessageFlags="FLAGS"/>\n<?GOREALLYSLOW?>\n'
        "</UPDATEMESSAGEUPLOAD>",
        c.UpdateMessageUpload(7, RW, BLOB),
    ),
    (
        141,
        '<UPDATEFILEUPLOAD Name="Full Path" FileKey="File Key"/>\n<?GOREALLYSLOW?>\n'
        "</UPDATEFILEUPLOAD>",
        c.UpdateFileUpload(FP, "File Key", BLOB),
    ),
    (
        155,
        '<SENDMAIL MessageHandle="Existing Message Handle" TargetFolder="Full Path of where to be'
        ' copied"/>\n<?GOREALLYSLOW?>\n</SENDMAIL>',
        c.SendMail(7, "Full Path of where to be copied", BLOB),
    ),
]


@pytest.mark.parametrize(("line", "shape", "expected"), UPLOAD_SHAPES)
def test_upload_shapes(line: int, shape: str, expected: c.Command) -> None:
    assert _parse(shape, BLOB) == expected
    assert COMMANDS[expected.COMMAND].line == line
    assert COMMANDS[expected.COMMAND].blob is Blob.REQUIRED
    # The well-formed reading, PI inside the element, means the same.
    well_formed = re.sub(r"/>\n(<\?GOREALLYSLOW\?>)\n", r">\1", shape, count=1)
    assert _parse(well_formed, BLOB) == expected


def test_blob_is_not_in_repr() -> None:
    assert "BLOB" not in repr(c.NewFileUpload(FP, FP, BLOB))
    assert "secret" not in repr(c.Login("joe", "secret"))


def test_optional_attributes() -> None:
    assert _parse("<SENDMAIL><?GOREALLYSLOW?></SENDMAIL>", b"") == c.SendMail(None, None, b"")
    shape = '<SENDMAIL MessageHandle="" TargetFolder=""><?GOREALLYSLOW?></SENDMAIL>'
    assert _parse(shape, b"x") == c.SendMail(None, None, b"x")
    shape = '<UPDATEFILEUPLOAD Name="a"><?GOREALLYSLOW?></UPDATEFILEUPLOAD>'
    assert _parse(shape, b"x") == c.UpdateFileUpload("a", None, b"x")


def test_unknown_attributes_are_ignored_and_wrapper_accepted() -> None:
    assert _parse('<GETFILE Name="a" Extra="b"/>') == c.GetFile("a")
    assert _parse('<XMAPROOT><GETFILE Name="a"/></XMAPROOT>') == c.GetFile("a")
    assert _parse("<DELETEITEMS/>") == c.DeleteItems(())


def _refused(shape: str, blob: bytes | None = None) -> CodecError:
    with pytest.raises(CodecError) as info:
        _parse(shape, blob)
    return info.value


@pytest.mark.parametrize(
    ("name", "attr"),
    [(name, a.xml) for name, spec in COMMANDS.items() for a in spec.attrs if a.required],
)
def test_every_missing_required_attribute_is_refused(name: str, attr: str) -> None:
    spec = COMMANDS[name]
    attrs = {a.xml: ("7" if a.xml == "MessageHandle" else "x") for a in spec.attrs if a.xml != attr}
    element = xml.element(name, attrs)
    blob = b"x" if spec.blob is Blob.REQUIRED else None
    with pytest.raises(CodecError) as info:
        parse_command(element, blob)
    assert (info.value.command, info.value.kind) == (name, ErrorKind.BAD_REQUEST)
    assert info.value.detail == f"{attr} is missing"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "0x1",
        "\u0663",
        "abc",
        str(MAX_HANDLE + 1),
        "1" * 21,
    ],
)
def test_invalid_handles(value: str) -> None:
    error = _refused(f'<GETMESSAGE MessageHandle="{value}"/>')
    assert (error.command, error.kind) == ("GETMESSAGE", ErrorKind.BAD_REQUEST)
    assert error.detail is not None
    assert error.detail.startswith("MessageHandle ")


def test_largest_handle_and_padding() -> None:
    assert _parse(f'<GETMESSAGE MessageHandle="{MAX_HANDLE}"/>') == c.GetMessage(MAX_HANDLE)
    assert _parse('<GETMESSAGE MessageHandle="007"/>') == c.GetMessage(7)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("", "Name is empty"),
        ("a&#9;b", "Name holds a control character"),
        ("a&#10;b", "Name holds a control character"),
        ("x" * (MAX_PATH_CHARS + 1), f"Name is longer than {MAX_PATH_CHARS} characters"),
    ],
)
def test_invalid_paths(value: str, detail: str) -> None:
    error = _refused(f'<CREATEFOLDER Name="{value}"/>')
    assert (error.command, error.detail) == ("CREATEFOLDER", detail)


def test_paths_keep_their_text() -> None:
    assert _parse('<LISTFOLDER Name=" Ünïcode/&amp;&lt;x&gt; "/>') == c.ListFolder(" Ünïcode/&<x> ")
    assert _parse(f'<LISTFOLDER Name="{"x" * MAX_PATH_CHARS}"/>') == c.ListFolder("x" * 1024)


def test_flag_errors() -> None:
    shape = (
        '<NEWMESSAGEUPLOAD TargetFolder="a" MessageFlags="{}"><?GOREALLYSLOW?></NEWMESSAGEUPLOAD>'
    )
    error = _refused(shape.format("READ SEEN"), b"x")
    assert error.detail == "MessageFlags unknown message flag 'SEEN'"
    error = _refused(shape.format("READ,NEW"), b"x")
    assert error.detail == "MessageFlags READ and NEW exclude each other"
    assert _parse(shape.format(""), b"x") == c.NewMessageUpload("a", frozenset(), b"x")


def test_login_needs_a_user_name() -> None:
    assert _refused('<LOGIN UserName="" Password="x"/>').detail == "UserName is empty"
    assert _parse('<LOGIN UserName="u" Password=""/>') == c.Login("u", "")


def test_unknown_commands() -> None:
    for shape, name in [
        ("<NOOP/>", "NOOP"),
        ("<listallfolders/>", "listallfolders"),  # names are case-sensitive
        ('<x:GETFILE xmlns:x="urn:x" Name="a"/>', "{urn:x}GETFILE"),
        ("<XMAPROOT><GETFILE Name='a'/><GETFILE Name='b'/></XMAPROOT>", "XMAPROOT"),
    ]:
        error = _refused(shape)
        assert (error.command, error.kind) == (name, ErrorKind.UNKNOWN_OPERATION)


def test_blob_presence_must_match_the_command() -> None:
    error = _refused('<NEWFILEUPLOAD Name="a" TargetFolder="b"/>')
    assert (error.command, error.detail) == (
        "NEWFILEUPLOAD",
        "<?GOREALLYSLOW?> and its data are missing",
    )
    error = _refused("<LISTALLFOLDERS><?GOREALLYSLOW?></LISTALLFOLDERS>", b"x")
    assert (error.command, error.detail) == ("LISTALLFOLDERS", "this command takes no data")


def test_batch_errors() -> None:
    error = _refused('<DELETEITEMS><MOVEFILE Name="a" TargetFolder="b"/></DELETEITEMS>')
    assert (error.command, error.detail) == (
        "DELETEITEMS",
        "item 1: MOVEFILE is not a DELETEITEMS item",
    )
    error = _refused('<MOVEITEMS><MOVEFILE Name="a" TargetFolder="b"/><MOVEMESSAGE/></MOVEITEMS>')
    assert (error.command, error.detail) == (
        "MOVEITEMS",
        "item 2 (MOVEMESSAGE): MessageHandle is missing",
    )
    element = etree.fromstring(
        b'<COPYITEMS><COPYFILE Name="a" TargetFolder="b"/>' * 1 + b"</COPYITEMS>"
    )
    for _ in range(2):
        element.append(xml.element("COPYFILE", {"Name": "a", "TargetFolder": "b"}))
    with pytest.raises(CodecError) as info:
        parse_command(element, max_items=2)
    assert (info.value.command, info.value.kind) == ("COPYITEMS", ErrorKind.LIMIT)
    assert len(parse_command(element, max_items=3).items) == 3  # type: ignore[union-attr]


def test_malformed_frames_become_codec_errors() -> None:
    (event,) = Decoder().feed(b"<GETFILE Name=\x00")
    assert isinstance(event, Malformed)
    with pytest.raises(CodecError) as info:
        decode(event)
    assert (info.value.command, info.value.kind, info.value.detail) == (
        "GETFILE",
        ErrorKind.BAD_REQUEST,
        "malformed XML",
    )


# --- round trips -------------------------------------------------------------------------------

_CHARS = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
_PATHS = st.text(_CHARS, min_size=1, max_size=30)
_HANDLES = st.integers(1, MAX_HANDLE)
_FLAGS = st.frozensets(st.sampled_from(list(XmapFlag))).filter(lambda f: not {R, N} <= f)
_DATA = st.binary(max_size=64)
_ITEMS_OF = {
    c.DeleteItems: st.one_of(st.builds(c.DeleteMessage, _HANDLES), st.builds(c.DeleteFile, _PATHS)),
    c.MoveItems: st.one_of(
        st.builds(c.MoveMessage, _HANDLES, _PATHS), st.builds(c.MoveFile, _PATHS, _PATHS)
    ),
    c.CopyItems: st.one_of(
        st.builds(c.CopyMessage, _HANDLES, _PATHS), st.builds(c.CopyFile, _PATHS, _PATHS)
    ),
}
COMMAND_VALUES = st.one_of(
    st.builds(c.Login, _PATHS, st.text(_CHARS, max_size=20)),
    st.just(c.ListAllFolders()),
    *(st.builds(cls, _PATHS) for cls in (c.ListFolder, c.GetFile, c.DeleteFile, c.EmptyFolder)),
    *(st.builds(cls, _HANDLES) for cls in (c.GetMessage, c.DeleteMessage)),
    *(st.builds(cls, st.lists(items, max_size=4).map(tuple)) for cls, items in _ITEMS_OF.items()),
    *(st.builds(cls, _PATHS, _PATHS) for cls in (c.MoveFile, c.CopyFile)),
    *(st.builds(cls, _HANDLES, _PATHS) for cls in (c.MoveMessage, c.CopyMessage)),
    st.builds(c.CreateFolder, _PATHS),
    st.builds(c.RenameFolder, _PATHS, _PATHS),
    st.builds(c.MoveFolder, _PATHS, _PATHS),
    st.builds(c.NewFileUpload, _PATHS, _PATHS, _DATA),
    st.builds(c.NewMessageUpload, _PATHS, _FLAGS, _DATA),
    st.builds(c.UpdateMessageUpload, _HANDLES, _FLAGS, _DATA),
    st.builds(c.UpdateFileUpload, _PATHS, st.none() | _PATHS, _DATA),
    st.builds(c.SendMail, st.none() | _HANDLES, st.none() | _PATHS, _DATA),
)


@given(st.lists(COMMAND_VALUES, min_size=1, max_size=4))
def test_commands_round_trip_through_the_wire(commands: list[c.Command]) -> None:
    wire = b"".join(
        encode_command(command_to_element(command), getattr(command, "data", None))
        for command in commands
    )
    assert [decode(event) for event in Decoder().feed(wire)] == commands


def test_command_encoding_spells_the_text() -> None:
    command = c.NewMessageUpload("Sent", frozenset({A, R}), b"MIME")
    assert encode_command(command_to_element(command), command.data) == (
        b'<NEWMESSAGEUPLOAD TargetFolder="Sent" MessageFlags="READ ANSWERED">'
        b"<?GOREALLYSLOW?></NEWMESSAGEUPLOAD>\x00{4}\r\nMIME"
    )
    assert request_attrs(c.SendMail(None, "Sent", b"")) == {"TargetFolder": "Sent"}


# --- flags ---------------------------------------------------------------------------------------


def test_flag_table() -> None:
    assert [(word.value, imap, is_set) for word, imap, is_set in FLAG_TABLE] == [
        ("READ", "\\Seen", True),
        ("NEW", "\\Seen", False),
        ("ANSWERED", "\\Answered", True),
        ("FORWARDED", "$Forwarded", True),
        ("DRAFT", "\\Draft", True),
    ]


def test_flag_words() -> None:
    assert parse_flags(" read, Answered|DRAFT ") == frozenset({R, A, D})
    assert parse_flags("NEW") == frozenset({N})
    assert imap_flags({R, A, F, D}) == frozenset({"\\Seen", "\\Answered", "$Forwarded", "\\Draft"})
    assert imap_flags({N}) == frozenset()
    assert xmap_flags(["\\SEEN", "$forwarded", "\\Flagged"]) == frozenset({R, F})
    assert xmap_flags([]) == frozenset({N})
    assert format_flags({D, R}) == "READ DRAFT"


@pytest.mark.parametrize(
    ("imap", "status"),
    [
        ([], N),
        (["\\Seen"], R),
        (["\\Seen", "$Forwarded"], F),
        (["\\Seen", "$Forwarded", "\\Answered"], A),
        (["\\Answered"], A),
        (["\\Seen", "\\Answered", "\\Draft"], D),
        (["\\Flagged", "\\Deleted"], N),
    ],
)
def test_message_status_is_one_word_by_precedence(imap: list[str], status: XmapFlag) -> None:
    assert message_status(imap) is status


_IMAP_SETS = st.frozensets(st.sampled_from(["\\Seen", "\\Answered", "$Forwarded", "\\Draft"]))


@given(_IMAP_SETS)
def test_imap_flags_round_trip(imap: frozenset[str]) -> None:
    words = xmap_flags(imap)
    assert imap_flags(words) == imap
    assert parse_flags(format_flags(words)) == words
    assert len(words & {R, N}) == 1


# --- responses, lines 159-280 --------------------------------------------------------------------


def _text(shape: str) -> bytes:
    """A response shape from the text, with the whitespace between its lines removed."""
    return re.sub(r">\s+<", "><", _fill(shape)).encode()


def _built(elem: etree._Element) -> bytes:
    return xml.serialize(elem)


ACK_SHAPES: list[tuple[int, c.Command, int | None, str]] = [
    (186, c.DeleteFile(FP), None, '<DELETEFILE Name="Full Path"/>'),
    (191, c.DeleteMessage(7), None, '<DELETEMESSAGE MessageHandle="Handle"/>'),
    (204, c.EmptyFolder(FP), None, '<EMPTYFOLDER Name="Full Path"/>'),
    (209, c.MoveFile(FP, FP), None, '<MOVEFILE Name="Full Path" TargetFolder="Full Path"/>'),
    # Line 215 ends the element with "/;>"; read as "/>".
    (
        214,
        c.MoveMessage(7, FP),
        None,
        '<MOVEMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>',
    ),
    # Line 227 has no XMAPROOT; every answer gets it.
    (227, c.CopyFile(FP, FP), None, '<COPYFILE Name="Full Path" TargetFolder="Full Path"/>'),
    # Line 231 reads TargetFolder=Full Path"> (no opening quote, no "/").
    (
        230,
        c.CopyMessage(3, FP),
        7,
        '<COPYMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>',
    ),
    (243, c.NewFileUpload(FP, "Folder", b""), None, '<NEWFILEUPLOAD Name="Full Path"/>'),
    (
        248,
        c.NewMessageUpload(FP, frozenset(), b""),
        7,
        '<NEWMESSAGEUPLOAD MessageHandle="Message Handle"/>',
    ),
    (
        253,
        c.UpdateMessageUpload(7, frozenset(), b""),
        None,
        '<UPDATEMESSAGEUPLOAD MessageHandle="Handle"/>',
    ),
    (258, c.UpdateFileUpload(FP, None, b""), None, '<UPDATEFILEUPLOAD Name="Full Path"/>'),
    (263, c.CreateFolder(FP), None, '<CREATEFOLDER Name="Full Path"/>'),
    (268, c.RenameFolder("Old", "Folder Name"), None, '<RENAMEFOLDER Name="Folder Name"/>'),
    (273, c.MoveFolder("Old", FP), None, '<MOVEFOLDER Name="Full Path"/>'),
    (278, c.SendMail(None, "Sent", b""), 7, '<SENDMAIL MessageHandle="Handle if copied"/>'),
]


@pytest.mark.parametrize(("line", "command", "handle", "shape"), ACK_SHAPES)
def test_ack_shapes(line: int, command: c.Command, handle: int | None, shape: str) -> None:
    shape = shape.replace('"Message Handle"', '"7"').replace('"Handle if copied"', '"7"')
    expected = _text(f"<XMAPROOT>\n{shape}\n</XMAPROOT>")
    assert _built(r.ack(r.echo(command, handle=handle))) == expected


def test_ack_rules() -> None:
    assert _built(r.ack(r.echo(c.SendMail(None, None, b"")))) == b"<XMAPROOT><SENDMAIL/></XMAPROOT>"
    with pytest.raises(ValueError, match="need MessageHandle"):
        r.ack(r.echo(c.NewMessageUpload("a", frozenset(), b"")))
    with pytest.raises(ValueError, match="no acknowledgement shape"):
        r.ack(r.Ack("LISTFOLDER", name="a"))
    assert (
        _built(r.ack(r.echo(c.Login("joe", "pw"))))
        == b'<XMAPROOT><LOGIN UserName="joe"/></XMAPROOT>'
    )


def test_list_all_folders_shape() -> None:
    shape = (
        '<XMAPROOT>\n<LISTALLFOLDERS>\n<FOLDER Name="Full Path"/>\n</LISTALLFOLDERS>\n</XMAPROOT>'
    )
    assert _built(r.list_all_folders(["Full Path"])) == _text(shape)
    assert _built(r.list_all_folders([])) == b"<XMAPROOT><LISTALLFOLDERS/></XMAPROOT>"


DATE = dt.datetime(2000, 4, 22, 10, 0, tzinfo=dt.UTC)


def test_list_folder_shape() -> None:
    # Lines 172-177 (and the tags of lines 28 and 40), placeholders filled with real values.
    shape = (
        '<XMAPROOT>\n<LISTFOLDER Name="TargetFolder">\n<MESSAGEHEADER MessageHandle="MessageHandle"'
        ' MessageFlags="MessageStatus" MessageDate="MessageDate" MessageFrom="MessageFrom"'
        ' MessageTo="MessageTo" MessageSubject="MessageSubject"'
        ' MessageAttachments="MessageAttachments" MessageLength="MessageLength"'
        ' MessageSessionKey="MessageSessionKey"/>\n<FILEHEADER Name="Name" Date="Date"'
        ' Length="Length" Key="Key"/>\n</LISTFOLDER>\n</XMAPROOT>'
    )
    values = {
        '"MessageHandle"': '"7"',
        '"MessageStatus"': '"ANSWERED"',
        '"MessageDate"': '"Sat, 22 Apr 2000 10:00:00 +0000"',
        '"MessageFrom"': '"Joe &lt;joe@example.com&gt;"',
        '"MessageTo"': '"ann@example.com, bob@example.com"',
        '"MessageSubject"': '"Hello"',
        '"MessageAttachments"': '"2"',
        '"MessageLength"': '"1234"',
        '"MessageSessionKey"': '""',
        '"Name"': '"Files/a.bin"',
        '"Date"': '"Sat, 22 Apr 2000 10:00:00 +0000"',
        '"Length"': '"5"',
        '"Key"': '""',
    }
    for placeholder, value in values.items():
        shape = shape.replace("=" + placeholder, "=" + value)
    rows: list[r.MessageHeader | r.FileHeader] = [
        r.MessageHeader(
            handle=7,
            status=message_status(["\\Seen", "\\Answered"]),
            date=DATE,
            sender="Joe <joe@example.com>",
            recipients="ann@example.com, bob@example.com",
            subject="Hello",
            attachments=2,
            length=1234,
        ),
        r.FileHeader("Files/a.bin", DATE.replace(tzinfo=None), 5),
    ]
    assert _built(r.list_folder("TargetFolder", rows)) == _text(shape)


@given(st.text(max_size=40))
def test_any_subject_gives_a_parseable_listing(subject: str) -> None:
    row = r.MessageHeader(7, N, DATE, subject, subject, subject, 0, 0)
    parsed = xml.parse(_built(r.list_folder(subject, [row])))
    header = parsed[0][0]
    assert header.get("MessageSubject") == clean(subject)
    assert parsed[0].get("Name") == clean(subject)


def test_clean_replaces_what_xml_cannot_carry() -> None:
    assert (
        clean("a\x00b\x1fc\ud800d\ufffee\tf\U0001f600")
        == "a\ufffdb\ufffdc\ufffdd\ufffde\tf\U0001f600"
    )


def test_blob_headers() -> None:
    assert _built(r.get_file_header("Files/a.bin", 5)) == (
        b'<XMAPROOT><GETFILE Name="Files/a.bin" Length="5"/></XMAPROOT>'
    )
    assert _built(r.get_message_header(7, 5)) == (
        b'<XMAPROOT><GETMESSAGE MessageHandle="7" Length="5"/></XMAPROOT>'
    )


BATCH_SHAPES: list[tuple[int, c.DeleteItems | c.MoveItems | c.CopyItems, str]] = [
    (
        196,
        c.DeleteItems((c.DeleteMessage(7), c.DeleteFile(FP))),
        '<XMAPROOT>\n<DELETEITEMS>\n<DELETEMESSAGE MessageHandle="MessageHandle"/>\n'
        '<DELETEFILE Name="Full Path"/>\n</DELETEITEMS>\n</XMAPROOT>',
    ),
    (
        219,
        c.MoveItems((c.MoveMessage(7, FP), c.MoveFile("Ful lPath", FP))),  # line 222's spelling
        '<XMAPROOT>\n<MOVEITEMS>\n<MOVEMESSAGE MessageHandle="MessageHandle" TargetFolder="Full'
        ' Path"/>\n<MOVEFILE Name="Ful lPath" TargetFolder="Full Path"/>\n</MOVEITEMS>\n</XMAPROOT>',
    ),
    (
        235,
        c.CopyItems((c.CopyMessage(7, FP), c.CopyFile(FP, FP))),
        '<XMAPROOT>\n<COPYITEMS>\n<COPYMESSAGE MessageHandle="MessageHandle" TargetFolder="Full'
        ' Path"/>\n<COPYFILE Name="Full Path" TargetFolder="Full Path"/>\n</COPYITEMS>\n</XMAPROOT>',
    ),
]


@pytest.mark.parametrize(("line", "batch", "shape"), BATCH_SHAPES)
def test_batch_shapes(
    line: int, batch: c.DeleteItems | c.MoveItems | c.CopyItems, shape: str
) -> None:
    results = [r.echo(item) for item in batch.items]
    assert _built(r.items(batch, results)) == _text(shape)


def test_batch_with_a_failed_item() -> None:
    batch = c.DeleteItems((c.DeleteMessage(7), c.DeleteFile("gone")))
    failure = r.ItemFailure(batch.items[1], BridgeError(ErrorKind.NOT_FOUND))
    assert _built(r.items(batch, [r.echo(batch.items[0]), failure])) == (
        b'<XMAPROOT><DELETEITEMS><DELETEMESSAGE MessageHandle="7"/>'
        b'<ERROR Command="DELETEFILE" Code="512" Text="no such folder, file or message" Name="gone"/>'
        b"</DELETEITEMS></XMAPROOT>"
    )
    with pytest.raises(ValueError, match="one result per item"):
        r.items(batch, [failure])


# --- errors ----------------------------------------------------------------------------------------


def test_error_table_is_total_and_shares_the_ximss_numbers() -> None:
    assert set(XMAP_ERRORS) == set(ErrorKind)
    for kind, error in XMAP_ERRORS.items():
        assert error.code == str(XIMSS_ERRORS[kind].num)
        assert error.text


def test_error_element() -> None:
    error = BridgeError(ErrorKind.PERMISSION)
    assert _built(error_element("DELETEFILE", error)) == (
        b'<XMAPROOT><ERROR Command="DELETEFILE" Code="550" Text="access denied"/></XMAPROOT>'
    )
    detailed = BridgeError(ErrorKind.LIMIT, "blob exceeds 10 bytes")
    assert wire_error(detailed).text == "blob exceeds 10 bytes"


def test_error_for_a_codec_error_names_its_command() -> None:
    with pytest.raises(CodecError) as info:
        _parse("<GETMESSAGE/>")
    assert _built(error_for(info.value)) == (
        b'<XMAPROOT><ERROR Command="GETMESSAGE" Code="501" Text="MessageHandle is missing"/>'
        b"</XMAPROOT>"
    )
    assert _built(error_for(BridgeError(ErrorKind.NOT_LOGGED_IN), "LISTFOLDER")) == (
        b'<XMAPROOT><ERROR Command="LISTFOLDER" Code="530" Text="login required"/></XMAPROOT>'
    )
    unknown = CodecError("\x01", ErrorKind.UNKNOWN_OPERATION)
    assert b'Command="\xef\xbf\xbd"' in _built(error_for(unknown))
