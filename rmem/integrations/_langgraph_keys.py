"""The key schema of the LangGraph store: the only module that formats its Redis keys.

A store lives in one rmem namespace (``ns``) and all its keys share the hash tag ``{ns}``, in
the style of :mod:`rmem._keys`, so every script sees one slot:

- ``rmem:{ns}:lg:i:<path>/<key>``: one hash per item (fields ``ns``, ``key``, ``val`` (packed
  value), ``created``/``updated`` (server µs), ``seq`` (write counter), ``ttl`` (ms, 0 = none),
  ``exp`` (expiry in server ms, 0 = none), ``nv`` (how many vectors), ``anc`` and ``kv``
  (index tokens, see below));
- ``rmem:{ns}:lg:v:<n>:<path>/<key>``: the ``n``-th embedding of that item (fields ``item``,
  ``anc``, ``kv``, ``exp``, ``vec``), with the item's TTL;
- ``rmem:{ns}:lg:k:<path>``: sorted set of the keys of one LangGraph namespace scored by their
  expiry (``inf`` for none), so a script knows when a namespace empties and when it expires;
- ``rmem:{ns}:lg:nss``: sorted set of the namespaces holding items, scored by their last
  expiry: ``list_namespaces`` needs no SCAN;
- ``rmem:{ns}:lg:meta``: hash with ``seq``, the write counter that orders search listings;
- ``rmem:{ns}:lg:idx`` and ``rmem:{ns}:lg:vidx``: the search indexes over items and vectors.

``<path>`` encodes a LangGraph namespace: each label with ``%``, ``.`` and ``/`` escaped as
``%25``, ``%2E`` and ``%2F``, labels joined by ``.``. The encoding is injective, so ``("a.b",)``
(``a%2Eb``) and ``("a", "b")`` (``a.b``) can never share a key, and the first ``/`` after the
prefix ends the path whatever the item key holds.

Search filters match *tokens* rather than raw text: ``anc`` holds a digest of every prefix of
the item's namespace, ``kv`` a digest of every top-level scalar of its value. Digests are
fixed-length hex, which no tag escaping or trimming can alter; every hit is checked again in
Python, so a digest collision could cost a page fill but never return a wrong item.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from rmem._keys import PREFIX

_ESCAPES = {"%": "%25", ".": "%2E", "/": "%2F"}
_ESCAPE_RE = re.compile(r"[%./]")
_UNESCAPE_RE = re.compile(r"%(25|2E|2F)")
_UNESCAPES = {v[1:]: k for k, v in _ESCAPES.items()}


class StoreKeys(NamedTuple):
    """The store-wide keys and index names of a store in one rmem namespace."""

    registry: str
    meta: str
    item_index: str
    vector_index: str
    item_prefix: str
    vector_prefix: str


def store_keys(namespace: str) -> StoreKeys:
    """Return the store-wide keys of the LangGraph store in rmem namespace ``namespace``."""
    tag = f"{PREFIX}:{{{namespace}}}:lg"
    return StoreKeys(
        f"{tag}:nss", f"{tag}:meta", f"{tag}:idx", f"{tag}:vidx", f"{tag}:i:", f"{tag}:v:"
    )


def encode_path(labels: tuple[str, ...]) -> str:
    """Encode a LangGraph namespace as one string (injective; see the module docstring)."""
    return ".".join(_ESCAPE_RE.sub(_escape, label) for label in labels)


def decode_path(path: str) -> tuple[str, ...]:
    """Invert :func:`encode_path`."""
    if "%" not in path:
        return tuple(path.split("."))
    return tuple(_UNESCAPE_RE.sub(_unescape, label) for label in path.split("."))


def item_key(namespace: str, path: str, key: str) -> str:
    """Return the hash key of item ``key`` in the encoded LangGraph namespace ``path``."""
    return f"{PREFIX}:{{{namespace}}}:lg:i:{path}/{key}"


def vector_key(namespace: str, path: str, key: str, n: int) -> str:
    """Return the hash key of the ``n``-th embedding of an item."""
    return f"{PREFIX}:{{{namespace}}}:lg:v:{n}:{path}/{key}"


def keys_zset(namespace: str, path: str) -> str:
    """Return the sorted set listing the keys of one encoded LangGraph namespace."""
    return f"{PREFIX}:{{{namespace}}}:lg:k:{path}"


def token(text: str) -> str:
    """A fixed-length tag token for ``text`` (128-bit BLAKE2b, hex)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def prefix_tokens(labels: tuple[str, ...]) -> list[str]:
    """The ``anc`` tokens of a namespace: one per non-empty prefix of it."""
    return [token(encode_path(labels[:n])) for n in range(1, len(labels) + 1)]


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPES[match.group(1)]
