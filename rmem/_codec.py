"""Payload encoding: a format byte, then msgpack, lz4-compressed above a size threshold.

The first byte of every payload is ``FORMAT_V1`` (0x01), with ``FLAG_LZ4`` (0x80) set when the
msgpack body that follows is an lz4 block (with its size stored). A reader that finds any other
first byte refuses the payload instead of guessing, so a future format can be told apart.
Only msgpack's JSON-like types are used; nothing is ever pickled.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import lz4.block
import msgpack

from rmem._errors import CorruptDataError, ValidationError

FORMAT_V1 = 0x01
FLAG_LZ4 = 0x80
DEFAULT_COMPRESS_THRESHOLD = 1024  # bytes of msgpack below which lz4 costs more than it saves

_HEADER_PLAIN = bytes([FORMAT_V1])
_HEADER_LZ4 = bytes([FORMAT_V1 | FLAG_LZ4])
_unpackb = msgpack.unpackb
_threads = threading.local()


def packb(obj: Any) -> bytes:
    """``msgpack.packb(obj, use_bin_type=True)``, on a ``Packer`` kept per thread.

    ``msgpack.packb`` makes a new ``Packer`` on every call, which costs more than packing a
    small message; a ``Packer`` may not be shared between threads, so each thread has its own.
    A call that raises leaves the packer empty for the next one.

    Raises:
        TypeError, ValueError, OverflowError: what ``msgpack.packb`` raises for ``obj``.
    """
    try:
        packer = _threads.packer
    except AttributeError:
        packer = _threads.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(obj)
    return data


def pack(
    obj: Any,
    *,
    compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
    max_size: int | None = None,
) -> bytes:
    """Encode ``obj`` (JSON-like values only) into a versioned payload.

    ``max_size`` bounds the msgpack encoding before compression, so a limit means the same
    whatever the compression ratio (rmem passes ``max_message_bytes``, which the error names).

    Raises:
        ValidationError: ``obj`` holds a value msgpack cannot encode (an int beyond 64 bits,
            an arbitrary object, ...), or its encoding is larger than ``max_size``.
    """
    try:
        body = packb(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"value cannot be encoded: {exc}") from None
    if max_size is not None and len(body) > max_size:
        raise ValidationError(
            f"{len(body)} bytes encoded; the limit is {max_size} (max_message_bytes)"
        )
    if len(body) >= compress_threshold:
        compressed = lz4.block.compress(body, store_size=True)
        if len(compressed) < len(body):
            return _HEADER_LZ4 + bytes(compressed)
    return _HEADER_PLAIN + bytes(body)


def unpack_many(payloads: Sequence[bytes]) -> list[Any]:
    """Decode many payloads (a read's hot path: plain payloads go straight to msgpack).

    Each payload is decoded on its own: framing them as one msgpack array saves little and
    could read two damaged payloads as two valid ones when their bytes line up.

    Raises:
        CorruptDataError: a payload is empty, of an unknown format, or does not decode.
    """
    if all(p[:1] == _HEADER_PLAIN for p in payloads):
        try:
            return [_unpackb(p[1:], raw=False) for p in payloads]
        except Exception:  # msgpack raises several unrelated types on bad input
            pass  # decode one by one below, to name the bad one
    return [unpack(p) for p in payloads]


def unpack(data: bytes) -> Any:
    """Decode a payload made by :func:`pack`.

    Raises:
        CorruptDataError: the payload is empty, of an unknown format, or does not decode.
    """
    if not data:
        raise CorruptDataError("empty payload")
    header = data[0]
    try:
        if header == FORMAT_V1:
            return msgpack.unpackb(data[1:], raw=False)
        if header == FORMAT_V1 | FLAG_LZ4:
            return msgpack.unpackb(lz4.block.decompress(data[1:]), raw=False)
    except Exception as exc:  # msgpack and lz4 raise several unrelated types on bad input
        raise CorruptDataError(f"payload does not decode: {exc}") from None
    raise CorruptDataError(f"unknown payload format byte 0x{header:02x}")
