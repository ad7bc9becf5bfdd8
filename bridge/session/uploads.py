"""A session's uploaded file set: files a client sends over HTTP before referring to them
(attachments for a message being composed). Spooled to disk, bounded per file and per session."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import BridgeError, ErrorKind


@dataclass(frozen=True, slots=True)
class Upload:
    upload_id: str
    file_name: str
    content_type: str
    size: int
    path: Path


class UploadSet:
    def __init__(self, max_file: int, max_total: int) -> None:
        self._files: dict[str, Upload] = {}
        self._max_file = max_file
        self._max_total = max_total

    @property
    def total(self) -> int:
        return sum(item.size for item in self._files.values())

    def start(self) -> tempfile._TemporaryFileWrapper[bytes]:
        """A temporary file to stream one upload into (deleted unless `commit` keeps it)."""
        return tempfile.NamedTemporaryFile(prefix="xb-upload-", delete=False)

    def check(self, size_so_far: int, replacing: str | None = None) -> None:
        """Raise LIMIT as soon as a streaming upload passes either limit."""
        previous = self._files[replacing].size if replacing in self._files else 0
        if size_so_far > self._max_file or self.total - previous + size_so_far > self._max_total:
            raise BridgeError(ErrorKind.LIMIT, "upload too large")

    def commit(self, upload: Upload) -> None:
        self.remove(upload.upload_id)
        self._files[upload.upload_id] = upload

    def get(self, upload_id: str) -> Upload | None:
        return self._files.get(upload_id)

    def remove(self, upload_id: str) -> bool:
        item = self._files.pop(upload_id, None)
        if item is None:
            return False
        discard_file(item.path)
        return True

    def clear(self) -> None:
        for upload_id in list(self._files):
            self.remove(upload_id)

    def __len__(self) -> int:
        return len(self._files)


def discard_file(path: Path | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
