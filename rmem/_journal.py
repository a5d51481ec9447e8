"""A durable, append-only queue of opaque byte entries in one file: the fallback outbox on disk.

While Redis is down rmem queues each write in an outbox; with ``journal_path=`` set the outbox
is also this file, so a process that crashes while degraded loses no write it acknowledged.

File format (integers big-endian)::

    header  b"RMEMJRNL" | u16 version (1)                                10 bytes
    frame   u8 kind | u32 length | u32 crc32 | payload (length bytes)    9 + length bytes
      kind 1, entry: payload = u64 seq | the entry's bytes
      kind 2, ack:   payload = u64 seq   (every entry with sequence <= seq is done)

The CRC (``zlib.crc32``) covers kind and length as well as the payload, so one flipped bit
anywhere in a frame is caught. Entries are numbered 1, 2, 3, ... without gaps. An ack frame
at the very start (what compaction writes) sets the numbering's base, so numbers keep rising
across compactions and reopens.

Recovery: frames are read in order, and the first one that is short (a torn write), fails its
CRC, has an unknown kind or an impossible sequence number ends the intact prefix. The file is
truncated to that prefix, so later appends are not hidden behind garbage, and a warning is
logged on ``rmem.journal``.

Compaction: when an ack leaves nothing pending, the file is replaced by header + one ack frame
(side file written, fsynced and locked, renamed over the journal, directory fsynced). A crash
at any point leaves either the old file (its entries replayed again: replay is idempotent) or
the new one. Because the rename swaps the inode that carries the ``flock``, an opener checks
after locking that the path still names the file it locked, and tries again if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import stat
import struct
import threading
import zlib
from collections import deque
from pathlib import Path
from typing import Final, Self

from rmem._errors import ValidationError

__all__ = ["Journal"]

_HEADER: Final = b"RMEMJRNL" + struct.pack(">H", 1)
_FRAME: Final = struct.Struct(">BII")  # kind, length, crc32
_SEQ: Final = struct.Struct(">Q")
_ENTRY: Final = 1
_ACK: Final = 2
_MAX_ENTRY: Final = 0xFFFF_FFFF - _SEQ.size

_log = logging.getLogger("rmem.journal")


def _frame(kind: int, payload: bytes) -> bytes:
    head = struct.pack(">BI", kind, len(payload))
    return _FRAME.pack(kind, len(payload), zlib.crc32(payload, zlib.crc32(head))) + payload


def _parse(data: bytes) -> tuple[int, int, int, list[tuple[int, bytes]]]:
    """Read the frames after the header; return (intact end, last seq, acked seq, entries)."""
    pos, last, acked = len(_HEADER), 0, 0
    entries: list[tuple[int, bytes]] = []
    while pos + _FRAME.size <= len(data):
        kind, length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if end > len(data) or length < _SEQ.size:
            break
        payload = data[pos + _FRAME.size : end]
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + 5])) != crc:
            break
        (seq,) = _SEQ.unpack_from(payload)
        if kind == _ENTRY and seq == last + 1:
            entries.append((seq, payload[_SEQ.size :]))
            last = seq
        elif kind == _ACK and length == _SEQ.size and (seq <= last or pos == len(_HEADER)):
            last, acked = max(last, seq), max(acked, seq)
        else:
            break
        pos = end
    return pos, last, acked, [e for e in entries if e[0] > acked]


def _create(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, 0o600)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        view = view[os.pwrite(fd, view, offset + len(data) - len(view)) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """A durable, append-only queue of opaque byte entries in one file.

    Thread-safe; one process at a time may hold a journal (an exclusive ``flock``).
    Usable as a context manager, which closes it.

    Args:
        path: the journal file; created (mode 0600) if missing. ``<path>.compact`` next to
            it is scratch space for compaction, deleted when the journal is opened.
        fsync: when true (the default) :meth:`append` and :meth:`ack` return only after the
            data is on disk; when false they survive a process crash but not a power loss.

    Raises:
        ValidationError: the file is locked by another process or another ``Journal``, or it
            is not a journal (nothing in it is changed then).
        OSError: the file or its directory cannot be opened, read or written.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._path = Path(path).absolute()
        self._fsync = fsync
        self._lock = threading.Lock()
        file = self._open_locked()
        self._file: io.FileIO | None = file
        try:
            self._recover(file)
        except BaseException:
            self.close()
            raise

    def _open_locked(self) -> io.FileIO:
        while True:
            file = open(self._path, "r+b", buffering=0, opener=_create)  # noqa: SIM115
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                raise ValidationError(
                    f"journal {self._path} is in use by another process or Journal"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                named, held = os.stat(self._path), os.fstat(file.fileno())
                if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                    return file
            file.close()  # a compaction renamed a new file over the path meanwhile

    def _recover(self, file: io.FileIO) -> None:
        data = file.readall()
        entries: list[tuple[int, bytes]]
        if len(data) < len(_HEADER) and _HEADER.startswith(data):
            # Empty, or a creation cut short before the header was whole: start afresh.
            intact, self._last, self._acked, entries = 0, 0, 0, []
        elif not data.startswith(_HEADER):
            raise ValidationError(f"{self._path} is not an rmem journal (version 1)")
        else:
            intact, self._last, self._acked, entries = _parse(data)
        self._torn = len(data) - intact
        if self._torn:
            _log.warning(
                "journal %s: dropped %d bytes of a torn or corrupt tail at offset %d",
                self._path,
                self._torn,
                intact,
            )
            os.ftruncate(file.fileno(), intact)
        self._size = intact
        if intact == 0:
            self._write(_HEADER)
            if self._fsync:
                _fsync_dir(self._path.parent)
        elif self._torn and self._fsync:
            os.fsync(file.fileno())
        self._pending = deque(entries)
        self._side_path().unlink(missing_ok=True)

    def _side_path(self) -> Path:
        return self._path.with_name(self._path.name + ".compact")

    @property
    def path(self) -> Path:
        """The journal file's absolute path."""
        return self._path

    @property
    def torn_bytes(self) -> int:
        """Bytes of a torn or corrupt tail dropped when the file was opened (0 if clean)."""
        return self._torn

    def append(self, entry: bytes) -> int:
        """Append one entry, durably, and return its sequence number.

        Numbers rise by one per entry and keep rising across reopens and compactions.

        Raises:
            ValidationError: ``entry`` is not bytes or is too long, or the journal is closed.
            OSError: the write or fsync failed; the entry is not in the journal.
        """
        if not isinstance(entry, bytes) or len(entry) > _MAX_ENTRY:
            raise ValidationError("a journal entry must be bytes, at most 2**32 - 9 long")
        with self._lock:
            self._require_open()
            seq = self._last + 1
            self._write(_frame(_ENTRY, _SEQ.pack(seq) + entry))
            self._last = seq
            self._pending.append((seq, entry))
            return seq

    def pending(self) -> list[tuple[int, bytes]]:
        """Return the entries not yet acknowledged as ``(seq, entry)``, oldest first."""
        with self._lock:
            return list(self._pending)

    def ack(self, seq: int) -> None:
        """Mark every entry with sequence ``<= seq`` as done, durably.

        Acking a number already acked does nothing. When nothing is left pending, the file
        is compacted to its header and one ack frame.

        Raises:
            ValidationError: ``seq`` is negative, above the last number issued, or the
                journal is closed.
            OSError: the write, fsync or rename failed; the entries stay pending.
        """
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValidationError(f"ack needs a sequence number >= 0, got {seq!r}")
        with self._lock:
            self._require_open()
            if seq > self._last:
                raise ValidationError(f"cannot ack {seq}: {self._path} issued up to {self._last}")
            if seq <= self._acked:
                return
            compact = seq == self._last
            if compact:
                self._compact(seq)
            else:
                self._write(_frame(_ACK, _SEQ.pack(seq)))
            self._acked = seq
            while self._pending and self._pending[0][0] <= seq:
                self._pending.popleft()
            if compact and self._fsync:
                _fsync_dir(self._path.parent)  # makes the rename durable

    def _write(self, data: bytes) -> None:
        fd = self._require_open().fileno()
        try:
            _write_all(fd, data, self._size)
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            # Cut a partial frame off now, or every later append would sit behind it.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
            raise
        self._size += len(data)

    def _compact(self, seq: int) -> None:
        old = self._require_open()
        side_path = self._side_path()
        content = _HEADER + _frame(_ACK, _SEQ.pack(seq))
        side = open(side_path, "w+b", buffering=0)  # noqa: SIM115
        try:
            # Locked before the rename, so the path is never unlocked while this object owns it.
            fcntl.flock(side.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(side.fileno(), stat.S_IMODE(os.fstat(old.fileno()).st_mode))
            _write_all(side.fileno(), content, 0)
            if self._fsync:
                os.fsync(side.fileno())
            os.replace(side_path, self._path)
        except BaseException:
            side.close()
            side_path.unlink(missing_ok=True)
            raise
        self._file, self._size = side, len(content)
        old.close()

    def _require_open(self) -> io.FileIO:
        if self._file is None:
            raise ValidationError(f"journal {self._path} is closed")
        return self._file

    def close(self) -> None:
        """Close the file and release its lock; closing twice does nothing."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
