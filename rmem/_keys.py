"""The key schema: the only module that formats a Redis key.

Every key starts with ``rmem:`` and carries a hash tag so that what one operation touches lives in
one slot (one shard on Redis Cluster):

- a session's keys share ``{<namespace>/<session id>}``:
  ``rmem:{ns/sid}:meta`` (hash: counts, bytes, times, TTL policy, revision),
  ``rmem:{ns/sid}:log`` (stream of packed messages, fields ``i`` = message id, ``d`` = payload),
  ``rmem:{ns/sid}:ids`` (hash: the set of stored message ids, for dedupe and pop);
- a namespace's own keys share ``{<namespace>}``: ``rmem:{ns}:sessions`` (sorted set of session
  ids scored by creation time, so listing sessions needs no SCAN).

Namespaces may not contain ``/``, ``{`` or ``}``, which keeps the ``ns/sid`` split unambiguous;
session ids may contain anything printable, because the suffix after the tag is fixed.
"""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "rmem"


class SessionKeys(NamedTuple):
    """The keys of one session, in the order the Lua scripts take them as KEYS."""

    meta: str
    log: str
    ids: str


def session_keys(namespace: str, session_id: str) -> SessionKeys:
    """Return the keys of session ``session_id`` in ``namespace``."""
    tag = f"{PREFIX}:{{{namespace}/{session_id}}}"
    return SessionKeys(f"{tag}:meta", f"{tag}:log", f"{tag}:ids")


def session_index(namespace: str) -> str:
    """Return the sorted set that lists the sessions of ``namespace``."""
    return f"{PREFIX}:{{{namespace}}}:sessions"
