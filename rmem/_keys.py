"""The key schema: the only module that formats a Redis key.

Every key starts with ``rmem:`` and carries a hash tag so that what one operation touches lives in
one slot (one shard on Redis Cluster):

- a session's keys share ``{<namespace>/<session id>}``:
  ``rmem:{ns/sid}:meta`` (hash: counts, bytes, times, TTL policy, revision, clock stamps, and
  ``#<message id>`` -> stamp for every stored message, for dedupe),
  ``rmem:{ns/sid}:msgs`` (sorted set of ``<stamp><batch index><message id>\0<payload>``
  members, all scored 0, so ordered by (stamp, index, id)),
  ``rmem:{ns/sid}:changes`` (stream: the session's change log);
- a namespace's own keys share ``{<namespace>}``: ``rmem:{ns}:sessions`` (sorted set of session
  ids scored by creation time, so listing sessions needs no SCAN), and its memories:
  ``rmem:{ns}:m:<id>`` (one hash per live record; the search index covers exactly this prefix),
  ``rmem:{ns}:mem:ids`` (sorted set of live record ids scored by expiry, +inf for none),
  ``rmem:{ns}:mem:meta`` (hash: ``rev``, bumped by every change), ``rmem:{ns}:mem:tombs``
  (hash: id -> stamp of each deleted record), ``rmem:{ns}:mem:texts`` (hash: digest of the
  normalised text -> id, for ``dedupe``), ``rmem:{ns}:mem:log`` (stream: the change log), and
  the search index ``rmem:{ns}:mem:idx``.

Namespaces may not contain ``/``, ``{`` or ``}``, which keeps the ``ns/sid`` split unambiguous;
session ids may contain anything printable, because the suffix after the tag is fixed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

PREFIX = "rmem"


class SessionKeys(NamedTuple):
    """The keys of one session, in the order the Lua scripts take them as KEYS."""

    meta: str
    msgs: str
    changes: str


def session_keys(namespace: str, session_id: str) -> SessionKeys:
    """Return the keys of session ``session_id`` in ``namespace``."""
    tag = f"{PREFIX}:{{{namespace}/{session_id}}}"
    return SessionKeys(f"{tag}:meta", f"{tag}:msgs", f"{tag}:changes")


def parse_session_key(key: str) -> tuple[str, str] | None:
    """Return ``(namespace, session id)`` of a session's meta key, else None."""
    head = f"{PREFIX}:{{"
    if not (key.startswith(head) and key.endswith("}:meta")):
        return None
    namespace, sep, session_id = key[len(head) : -len("}:meta")].partition("/")
    return (namespace, session_id) if sep and namespace and session_id else None


def parse_memory_key(key: str) -> tuple[str, str] | None:
    """Return ``(namespace, record id)`` of a record hash key, else None."""
    head = f"{PREFIX}:{{"
    namespace, sep, rest = key[len(head) :].partition("}:m:")
    if not key.startswith(head) or not sep or "/" in namespace or not rest:
        return None
    return namespace, rest


def parse_key_scope(key: str) -> tuple[str, str | None] | None:
    """Return what a key belongs to: ``(namespace, session id)`` for a session's keys,
    ``(namespace, None)`` for any other key of a namespace, None for a key not rmem's."""
    head = f"{PREFIX}:{{"
    if not key.startswith(head):
        return None
    for suffix in ("}:meta", "}:msgs", "}:changes"):
        if key.endswith(suffix):
            namespace, sep, session_id = key[len(head) : -len(suffix)].partition("/")
            if sep and namespace and session_id:
                return namespace, session_id
    namespace, sep, _ = key[len(head) :].partition("}:")
    return (namespace, None) if sep and namespace and "/" not in namespace else None


SERVER_MARK = f"{PREFIX}:mark"
"""A token the first client to reach a Redis leaves there; when it is gone, Redis lost its data."""


def sync_channel(namespace: str) -> str:
    """Return the pub/sub channel that carries the sync hints of ``namespace``."""
    return f"{PREFIX}:{{{namespace}}}:sync"


def expired_channel(db: int) -> str:
    """Return the server's channel of ``expired`` key events for database ``db``."""
    return f"__keyevent@{db}__:expired"


def parse_sync_channel(channel: str) -> str | None:
    """Return the namespace of a sync channel, else None."""
    head, tail = f"{PREFIX}:{{", "}:sync"
    if channel.startswith(head) and channel.endswith(tail):
        return channel[len(head) : -len(tail)]
    return None


def session_index(namespace: str) -> str:
    """Return the sorted set that lists the sessions of ``namespace``."""
    return f"{PREFIX}:{{{namespace}}}:sessions"


class MemoryKeys(NamedTuple):
    """The namespace-wide keys of the memories of one namespace (KEYS[1..5] of memory scripts)."""

    ids: str
    meta: str
    tombs: str
    texts: str
    log: str


def memory_keys(namespace: str) -> MemoryKeys:
    """Return the namespace-wide memory keys of ``namespace``."""
    tag = f"{PREFIX}:{{{namespace}}}:mem"
    return MemoryKeys(f"{tag}:ids", f"{tag}:meta", f"{tag}:tombs", f"{tag}:texts", f"{tag}:log")


def memory_prefix(namespace: str) -> str:
    """Return the prefix of the record hashes of ``namespace`` (what its index covers)."""
    return f"{PREFIX}:{{{namespace}}}:m:"


def memory_key(namespace: str, record_id: str) -> str:
    """Return the hash key of record ``record_id`` in ``namespace``."""
    return f"{PREFIX}:{{{namespace}}}:m:{record_id}"


def memory_index(namespace: str) -> str:
    """Return the name of the search index over the records of ``namespace``."""
    return f"{PREFIX}:{{{namespace}}}:mem:idx"


# ---------------------------------------------------------------- the LangGraph store
# (rmem.integrations.langgraph)
#
# The key schema of the LangGraph store: the only module that formats its Redis keys.
#
# A store lives in one rmem namespace (``ns``) and all its keys share the hash tag ``{ns}``, in
# the style of :mod:`rmem._keys`, so every script sees one slot:
#
# - ``rmem:{ns}:lg:i:<path>/<key>``: one hash per item (fields ``ns``, ``key``, ``val`` (packed
#   value), ``created``/``updated`` (server µs), ``seq`` (write counter), ``ttl`` (ms, 0 = none),
#   ``exp`` (expiry in server ms, 0 = none), ``nv`` (how many vectors), ``anc`` and ``kv``
#   (index tokens, see below));
# - ``rmem:{ns}:lg:v:<n>:<path>/<key>``: the ``n``-th embedding of that item (fields ``item``,
#   ``anc``, ``kv``, ``exp``, ``vec``), with the item's TTL;
# - ``rmem:{ns}:lg:k:<path>``: sorted set of the keys of one LangGraph namespace scored by their
#   expiry (``inf`` for none), so a script knows when a namespace empties and when it expires;
# - ``rmem:{ns}:lg:nss``: sorted set of the namespaces holding items, scored by their last
#   expiry: ``list_namespaces`` needs no SCAN;
# - ``rmem:{ns}:lg:meta``: hash with ``seq``, the write counter that orders search listings;
# - ``rmem:{ns}:lg:idx`` and ``rmem:{ns}:lg:vidx``: the search indexes over items and vectors.
#
# ``<path>`` encodes a LangGraph namespace: each label with ``%``, ``.`` and ``/`` escaped as
# ``%25``, ``%2E`` and ``%2F``, labels joined by ``.``. The encoding is injective, so ``("a.b",)``
# (``a%2Eb``) and ``("a", "b")`` (``a.b``) can never share a key, and the first ``/`` after the
# prefix ends the path whatever the item key holds.


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


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPES[match.group(1)]
