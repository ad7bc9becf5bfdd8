"""The XMAP commands as typed values, one frozen dataclass per command of xmap-0.90.txt lines
69-157 (request shapes) plus the LOGIN extension of DESIGN.md section 6.

`COMMAND` is the element name as the text spells it. Fields carry the attributes, converted:
paths stay strings (`Name`, `TargetFolder`, `Destination`: "Full Path"), handles are ints (line
29: "an unsigned long in a string format"), MessageFlags a set of `XmapFlag`. Blob data is left
out of repr, as message contents never go to logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from bridge.xmap.flags import XmapFlag


@dataclass(frozen=True, slots=True)
class Login:
    """`<LOGIN UserName=".." Password=".."/>`, DESIGN.md section 6 (not in the text)."""

    COMMAND: ClassVar[str] = "LOGIN"
    user_name: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ListAllFolders:
    """`<LISTALLFOLDERS/>`, line 75."""

    COMMAND: ClassVar[str] = "LISTALLFOLDERS"


@dataclass(frozen=True, slots=True)
class ListFolder:
    """`<LISTFOLDER Name="TargetFolder"/>`, line 78."""

    COMMAND: ClassVar[str] = "LISTFOLDER"
    name: str


@dataclass(frozen=True, slots=True)
class GetFile:
    """`<GETFILE Name="Full Path"/>`, line 81."""

    COMMAND: ClassVar[str] = "GETFILE"
    name: str


@dataclass(frozen=True, slots=True)
class GetMessage:
    """`<GETMESSAGE MessageHandle="Handle"/>`, line 84."""

    COMMAND: ClassVar[str] = "GETMESSAGE"
    handle: int


@dataclass(frozen=True, slots=True)
class DeleteFile:
    """`<DELETEFILE Name="Full Path"/>`, line 87; also an item of DELETEITEMS (line 95)."""

    COMMAND: ClassVar[str] = "DELETEFILE"
    name: str


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    """`<DELETEMESSAGE MessageHandle="Handle"/>`, line 90; also an item of DELETEITEMS (94)."""

    COMMAND: ClassVar[str] = "DELETEMESSAGE"
    handle: int


@dataclass(frozen=True, slots=True)
class DeleteItems:
    """`<DELETEITEMS>` with DELETEMESSAGE and DELETEFILE children, lines 93-96."""

    COMMAND: ClassVar[str] = "DELETEITEMS"
    items: tuple[DeleteMessage | DeleteFile, ...]


@dataclass(frozen=True, slots=True)
class EmptyFolder:
    """`<EMPTYFOLDER Name="Full Path"/>`, line 99."""

    COMMAND: ClassVar[str] = "EMPTYFOLDER"
    name: str


@dataclass(frozen=True, slots=True)
class MoveFile:
    """`<MOVEFILE Name="Full Path" TargetFolder="Full Path"/>`, line 102 (item: line 110)."""

    COMMAND: ClassVar[str] = "MOVEFILE"
    name: str
    target_folder: str


@dataclass(frozen=True, slots=True)
class MoveMessage:
    """`<MOVEMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>`, line 105 (item: 109)."""

    COMMAND: ClassVar[str] = "MOVEMESSAGE"
    handle: int
    target_folder: str


@dataclass(frozen=True, slots=True)
class MoveItems:
    """`<MOVEITEMS>` with MOVEMESSAGE and MOVEFILE children, lines 108-111."""

    COMMAND: ClassVar[str] = "MOVEITEMS"
    items: tuple[MoveMessage | MoveFile, ...]


@dataclass(frozen=True, slots=True)
class CopyFile:
    """`<COPYFILE Name="Full Path" TargetFolder="Full Path"/>`, line 114 (item: line 122)."""

    COMMAND: ClassVar[str] = "COPYFILE"
    name: str
    target_folder: str


@dataclass(frozen=True, slots=True)
class CopyMessage:
    """`<COPYMESSAGE MessageHandle="Handle" TargetFolder="Full Path"/>`, line 117 (the text lacks
    the value's opening quote there; line 121 has it), item: line 121."""

    COMMAND: ClassVar[str] = "COPYMESSAGE"
    handle: int
    target_folder: str


@dataclass(frozen=True, slots=True)
class CopyItems:
    """`<COPYITEMS>` with COPYMESSAGE and COPYFILE children, lines 120-123."""

    COMMAND: ClassVar[str] = "COPYITEMS"
    items: tuple[CopyMessage | CopyFile, ...]


@dataclass(frozen=True, slots=True)
class NewFileUpload:
    """`<NEWFILEUPLOAD Name="Full Path" TargetFolder="Full Path"/>` + blob, lines 126-128.
    The blob is raw binary data (line 158)."""

    COMMAND: ClassVar[str] = "NEWFILEUPLOAD"
    name: str
    target_folder: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewMessageUpload:
    """`<NEWMESSAGEUPLOAD TargetFolder="Full Path" MessageFlags="FLAGS"/>` + blob, lines 131-133.
    The blob is a MIME message (line 158)."""

    COMMAND: ClassVar[str] = "NEWMESSAGEUPLOAD"
    target_folder: str
    flags: frozenset[XmapFlag]
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class UpdateMessageUpload:
    """`<UPDATEMESSAGEUPLOAD MessageHandle="Handle" MessageFlags="FLAGS"/>` + blob, lines
    136-138. The blob is a MIME message (line 158)."""

    COMMAND: ClassVar[str] = "UPDATEMESSAGEUPLOAD"
    handle: int
    flags: frozenset[XmapFlag]
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class UpdateFileUpload:
    """`<UPDATEFILEUPLOAD Name="Full Path" FileKey="File Key"/>` + blob, lines 141-143. FileKey is
    optional (None when absent or empty): keys are never used (DESIGN.md section 6)."""

    COMMAND: ClassVar[str] = "UPDATEFILEUPLOAD"
    name: str
    file_key: str | None
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CreateFolder:
    """`<CREATEFOLDER Name="Full Path"/>`, line 146."""

    COMMAND: ClassVar[str] = "CREATEFOLDER"
    name: str


@dataclass(frozen=True, slots=True)
class RenameFolder:
    """`<RENAMEFOLDER Name="Full Path" Destination="Full Path"/>`, line 149."""

    COMMAND: ClassVar[str] = "RENAMEFOLDER"
    name: str
    destination: str


@dataclass(frozen=True, slots=True)
class MoveFolder:
    """`<MOVEFOLDER Name="Full Path" Destination="Full Path"/>`, line 152."""

    COMMAND: ClassVar[str] = "MOVEFOLDER"
    name: str
    destination: str


@dataclass(frozen=True, slots=True)
class DeleteFolder:
    """`<DELETEFOLDER Name="Full Path"/>`: an extension (README "XMAP"). Line 20 says a server
    MUST "Allow an agent to delete a folder", but no command of the text does."""

    COMMAND: ClassVar[str] = "DELETEFOLDER"
    name: str


@dataclass(frozen=True, slots=True)
class RenameFile:
    """`<RENAMEFILE Name="Full Path" Destination="Full Path"/>`: an extension for line 17's
    "Allow an agent to rename a file", which no command of the text does."""

    COMMAND: ClassVar[str] = "RENAMEFILE"
    name: str
    destination: str


@dataclass(frozen=True, slots=True)
class SendMail:
    """`<SENDMAIL MessageHandle=".." TargetFolder=".."/>` + blob, lines 155-157. Both attributes
    are optional: line 154 deletes the handle "if present" and copies to the folder "if
    present" (None when absent or empty)."""

    COMMAND: ClassVar[str] = "SENDMAIL"
    handle: int | None
    target_folder: str | None
    data: bytes = field(repr=False)


Item = DeleteMessage | DeleteFile | MoveMessage | MoveFile | CopyMessage | CopyFile

Command = (
    Login
    | ListAllFolders
    | ListFolder
    | GetFile
    | GetMessage
    | DeleteFile
    | DeleteMessage
    | DeleteItems
    | EmptyFolder
    | MoveFile
    | MoveMessage
    | MoveItems
    | CopyFile
    | CopyMessage
    | CopyItems
    | NewFileUpload
    | NewMessageUpload
    | UpdateMessageUpload
    | UpdateFileUpload
    | CreateFolder
    | RenameFolder
    | MoveFolder
    | DeleteFolder
    | RenameFile
    | SendMail
)
