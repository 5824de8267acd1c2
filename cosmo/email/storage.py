"""Raw messages and attachments on disk, written durably.

Layout under the store directory (``<data_dir>/email`` by default)::

    in/2026/11/23/<uuid>.eml        a message as received (with our Received header)
    out/2026/11/23/<uuid>.eml       a message as sent (reply, acknowledgement)
    attachments/<email id>/<n>-<name>

Paths in the database are relative to the store directory, so the data
directory can move.  A file is written under a temporary name, flushed and
``fsync``-ed, renamed into place, and its directory ``fsync``-ed, so a
message reported stored survives a crash of the process or of the machine
(``fsync: false`` skips the syncs, for throwaway data only).  Every method
here blocks: the service calls them in a worker thread.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cosmo.email.mime import AttachmentPart

__all__ = ["MailStore"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._ +-]+")
_MAX_NAME = 100


def _safe_name(name: str) -> str:
    """A file name that cannot leave its directory or upset a shell."""
    base = _UNSAFE.sub("_", name.replace("/", "_").replace("\\", "_")).strip(" ._") or "attachment"
    if len(base) > _MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: _MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) < 10 else base[:_MAX_NAME]
    return base


class MailStore:
    """Files of the e-mail channel under ``root``.  See the module documentation."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync

    def prepare(self) -> None:
        """Create the directories (idempotent)."""
        for sub in ("in", "out", "attachments"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses paths that could leave the store.

        Paths come from the database, written by this class: relative, no ``..``.  Raises
        ``PermissionError`` (an ``OSError``, as a missing file would) for any other.
        """
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or ".." in parts or "\0" in relative:
            raise PermissionError(f"path outside the e-mail store: {relative!r}")
        return self.root.joinpath(*parts)

    def read(self, relative: str) -> bytes:
        """A stored file's bytes.  Raises ``OSError``."""
        return self.path(relative).read_bytes()

    def write_messages(self, direction: str, messages: Sequence[bytes], when: datetime) -> list[str]:
        """Write messages of one direction (``in``/``out``) durably; their relative paths, in order."""
        folder = Path(direction) / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        directory = self.root / folder
        directory.mkdir(parents=True, exist_ok=True)
        names = []
        for data in messages:
            name = f"{uuid.uuid4().hex}.eml"
            self._write(directory / name, data)
            names.append((folder / name).as_posix())
        self._sync_dirs([directory])
        return names

    def write_attachments(self, email_id: int, parts: Iterable[AttachmentPart]) -> list[dict[str, Any]]:
        """Write a message's attachments; their descriptions (index, name, type, size, path) for the database."""
        folder = Path("attachments") / str(email_id)
        directory = self.root / folder
        out: list[dict[str, Any]] = []
        for part in parts:
            if not out:
                directory.mkdir(parents=True, exist_ok=True)
            name = f"{part.index}-{_safe_name(part.filename)}"
            self._write(directory / name, part.data)
            out.append({
                "index": part.index, "filename": part.filename, "content_type": part.content_type,
                "size": len(part.data), "inline": part.inline, "content_id": part.content_id,
                "path": (folder / name).as_posix(),
            })
        if out:
            self._sync_dirs([directory])
        return out

    def _write(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(path.name + ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(temporary, flags, 0o640)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)

    def _sync_dirs(self, directories: Iterable[Path]) -> None:
        if not self.fsync:
            return
        for directory in directories:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
