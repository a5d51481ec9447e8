# Generated from rmem/_async/session.py by scripts/unasync.py: edit that file, not this one.
"""Sessions: a conversation history in Redis, shared by every process that opens it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rmem import _lua
from rmem._errors import BackendError, CorruptDataError, NotFoundError, RmemError
from rmem._hlc import parse_stamp
from rmem._keys import session_keys, sync_channel
from rmem._lua import Arg, ScriptCall
from rmem._models import Message, SessionInfo
from rmem._replica import replica_info
from rmem._session_core import (
    META_NUMBERS,
    TtlPolicy,
    append_args,
    check_last,
    coerce_message,
    decode_members,
    decode_message,
    decode_messages,
    encode_message,
    export_session,
    find_damage,
    parse_read,
    prepare_batch,
    stored_heads,
)
from rmem._validate import check_ttl

if TYPE_CHECKING:
    from rmem._sync.client import Client

# session_touch's ARGV for a read: no PTTL, and a sliding TTL restarted under
# min(1 s, ttl / 10) ago stays as it is (decision 30).
_TIME_LEFT_UNUSED: tuple[Arg, ...] = (1,)


class Session:
    """A handle on one session of a namespace. Making one does no I/O.

    Every write is one atomic round trip to Redis. When the session has a TTL, all its keys
    expire together; with ``sliding`` every read and write restarts the TTL.
    Get one from ``client.session(session_id, ttl=..., sliding=...)``.

    Any method raises ``CorruptDataError`` naming the key when something other than rmem
    damaged the session's data in Redis, before it changes anything; ``delete()`` removes
    such a session, and ``clear()`` heals damaged counts (see docs/decisions.md, 23 and 25).
    """

    __slots__ = (
        "_backend",
        "_client",
        "_clock",
        "_common",
        "_id",
        "_keys",
        "_namespace",
        "_policy",
        "_settings",
        "_sync",
    )

    def __init__(self, client: Client, session_id: str, policy: TtlPolicy) -> None:
        self._client = client
        self._backend = client._backend
        self._settings = settings = client._backend.settings
        self._clock = client._clock
        self._sync = client._sync
        self._namespace = client.namespace
        self._id = session_id
        self._keys = session_keys(self._namespace, session_id)
        self._policy = policy
        # The first ARGV of every session write script (see lua/_session.lua), but the stamp.
        self._common: tuple[Arg, ...] = (
            sync_channel(self._namespace),
            session_id,
            settings.session_change_log_maxlen,
        )

    def _write_args(self, stamp: str, *args: Arg) -> tuple[Arg, ...]:
        return (*self._common, stamp, self._settings.max_stamp_ahead_ms, *args)

    def _run(self, script: _lua.Script, args: tuple[Arg, ...]) -> Any:
        try:
            return self._backend.run(
                script, self._keys, args, namespace=self._namespace, session=self._id
            )
        except BaseException as exc:
            if self._sync is not None:
                # A write may have run in Redis before its reply was lost (a timeout, a
                # dropped link, a cancelled task), and the sync thread ignores this client's
                # own hints: the replica catches up from Redis instead.
                self._sync.changed_session(self._namespace, self._id)
            if isinstance(exc, BackendError | CorruptDataError):
                raise self._damage(exc) from exc
            raise

    def _damage(self, exc: RmemError) -> RmemError:
        # A script failed on a key of the wrong type (WRONGTYPE) or on a meta field it could
        # not use (a Lua runtime error): find and name the damaged key, else keep ``exc``.
        if not (isinstance(exc, CorruptDataError) or "user_script:" in str(exc)):
            return exc
        keys = self._keys
        try:
            types = self._backend.batch(
                [("TYPE", key) for key in keys], namespace=self._namespace
            )
            numbers = None
            if find_damage(keys, types, None, self._namespace, self._id) is None:
                numbers = self._backend.call(
                    "HMGET", keys.meta, *META_NUMBERS, namespace=self._namespace
                )
        except RmemError:
            return exc  # cannot look: report what failed first
        return find_damage(keys, types, numbers, self._namespace, self._id) or exc

    def _write(self, script: _lua.Script, stamp: str, *args: Arg) -> Any:
        reply = self._run(script, self._write_args(stamp, *args))
        if self._sync is not None:
            self._sync.changed_session(self._namespace, self._id)
        return reply

    @property
    def id(self) -> str:
        """The session id."""
        return self._id

    @property
    def namespace(self) -> str:
        """The namespace the session lives in."""
        return self._namespace

    def __repr__(self) -> str:
        return f"<Session {self._namespace}/{self._id}>"

    def _append(
        self,
        messages: list[Message],
        payloads: list[bytes],
        created_ms: int = -1,
        *,
        owned: bool = False,
    ) -> None:
        # owned: nothing else holds the values inside ``messages``, and they are what decoding
        # ``payloads`` gives (a msgpack copy, as the OpenAI adapter makes): the writer's replica
        # may then keep them as they are instead of decoding the payloads again.
        stamp = self._clock.now_text()  # one stamp per batch: it stays contiguous
        args, heads = append_args(messages, payloads, stamp)
        policy = self._policy.args
        reply = self._run(
            _lua.SESSION_APPEND, self._write_args(stamp, *policy, created_ms, *args)
        )
        moved = stored_heads(reply, stamp, heads)
        if moved is not None:
            # Redis placed the batch after what the session held, stamped by another clock
            # (lua/_session.lua): later writes of this client stamp after it too.
            heads = moved
            self._clock.observe(parse_stamp(reply[9]))
        orphaned = False
        if self._sync is not None:
            # The replica holds what Redis holds: decoded copies (tuples read back as lists,
            # and later changes to the caller's own dicts and lists do not reach it), decoded
            # only when a replica of this session takes them.
            key = self._keys.msgs
            orphaned = self._sync.applied_append(
                self._namespace,
                self._id,
                reply,
                (lambda: messages) if owned else (lambda: decode_messages(payloads, key)),
                heads,
                policy,
            )
        if reply[0]:  # this call created the session: list it in its namespace
            self._client._list_session(self._id, int(reply[1]), check_mark=orphaned)

    def append(self, message: Message | Mapping[str, Any]) -> Message:
        """Append one message and return it (with ``id`` and ``created_at`` filled in).

        A message whose id is already stored is not stored again (a retry is harmless).

        Raises:
            ValidationError: bad message (no role, unencodable content, over the size limit);
                nothing is written.
            UnavailableError: Redis cannot be reached.
        """
        msg = coerce_message(message)
        payload = encode_message(
            msg, self._settings.max_message_bytes, self._settings.compress_threshold
        )
        self._append([msg], [payload])
        return msg

    def extend(self, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        """Append many messages atomically in one round trip; return them in order.

        Raises:
            ValidationError: any item is bad; the whole batch is refused and nothing written.
            UnavailableError: Redis cannot be reached.
        """
        batch, payloads = prepare_batch(
            messages, self._settings.max_message_bytes, self._settings.compress_threshold
        )
        if batch:
            self._append(batch, payloads)
        return batch

    def _read(self, with_messages: bool) -> tuple[SessionInfo | None, list[Message]]:
        reply = self._run(_lua.SESSION_READ, (int(with_messages),))
        return parse_read(reply, self._namespace, self._id, self._keys)

    def messages(self, last: int | None = None) -> list[Message]:
        """Return the messages, oldest first: all of them, or only the ``last`` N.

        Returns an empty list when the session does not exist. Restarts a sliding TTL.

        Raises:
            ValidationError: ``last`` is not a non-negative int.
            CorruptDataError: a stored message cannot be decoded (names the key).
        """
        count = check_last(last)
        if count == 0 and last == 0:
            return []
        served = self._replica_messages(count)
        if served is not None:
            return served
        try:
            members, _ = self._backend.pipeline(
                (
                    ("ZRANGE", self._keys.msgs, -count if count else 0, -1),
                    ScriptCall(_lua.SESSION_TOUCH, self._keys, _TIME_LEFT_UNUSED),
                ),
                namespace=self._namespace,
                session=self._id,
            )
        except (BackendError, CorruptDataError) as exc:
            raise self._damage(exc) from exc
        return decode_members(members, self._keys.msgs)

    def _replica_messages(self, count: int) -> list[Message] | None:
        # The last ``count`` messages (all for 0) from this client's local replica of the
        # session while it is caught up, without I/O; else None, and a replica is opened
        # for the next reads (a client without replicas, or degraded, always gives None).
        if self._sync is None or self._backend.degraded:
            return None
        with self._sync.lock:
            replica = self._sync.session(self._namespace, self._id)
            if replica is None:
                return None
            return replica.messages[-count:] if count else replica.messages[:]

    def pop(self) -> Message | None:
        """Remove and return the newest message atomically; None when there is none."""
        payload = self._write(_lua.SESSION_POP, self._clock.now_text())
        if payload is None:
            return None
        return decode_message(payload, self._keys.msgs)

    def info(self) -> SessionInfo:
        """Return counts, size, times and TTL of the session.

        Raises:
            NotFoundError: the session does not exist (never written, deleted or expired).
        """
        if self._sync is not None and not self._backend.degraded:
            with self._sync.lock:
                replica = self._sync.session(self._namespace, self._id)
                if replica is not None and replica.exists:
                    return replica_info(replica)
        info, _ = self._read(False)
        if info is None:
            raise self._not_found()
        return info

    def count(self) -> int:
        """Return how many messages the session holds (0 when it does not exist)."""
        if self._sync is not None and not self._backend.degraded:
            with self._sync.lock:
                replica = self._sync.session(self._namespace, self._id)
                if replica is not None:
                    return replica.count if replica.exists else 0
        info, _ = self._read(False)
        return 0 if info is None else info.message_count

    def exists(self) -> bool:
        """Return True when the session exists. Does not restart a sliding TTL."""
        if self._sync is not None and not self._backend.degraded:
            with self._sync.lock:
                replica = self._sync.session(self._namespace, self._id)
                if replica is not None:
                    replica.touch_due = False  # exists() is not a use
                    return replica.exists
        try:
            reply = self._backend.call(
                "HEXISTS", self._keys.meta, "created", namespace=self._namespace
            )
        except CorruptDataError as exc:
            raise self._damage(exc) from exc
        return bool(reply)

    def touch(self) -> bool:
        """Restart a sliding TTL without reading; False when the session does not exist."""
        reply = self._run(_lua.SESSION_TOUCH, ())
        return int(reply) != -2

    def expire(self, ttl: float | None) -> bool:
        """Set the session's TTL to ``ttl`` seconds from now (None: keep forever).

        The new TTL becomes the session's policy: a sliding session keeps restarting it on use.
        Returns False when the session does not exist.

        Raises:
            ValidationError: ``ttl`` is not a positive number or None.
        """
        ttl_ms = check_ttl(ttl)
        reply = self._write(_lua.SESSION_EXPIRE, self._clock.now_text(), ttl_ms, -1)
        return bool(reply)

    def clear(self) -> int:
        """Remove every message but keep the session (and its TTL); return how many went.

        Raises:
            NotFoundError: the session does not exist.
            CorruptDataError: the session's creation time or TTL policy in Redis was damaged
                by something else (nothing changed; ``delete()`` removes the session).
        """
        removed = int(self._write(_lua.SESSION_CLEAR, self._clock.now_text()))
        if removed < 0:
            raise self._not_found()
        return removed

    def delete(self) -> bool:
        """Delete the session and all its keys; False when it did not exist.

        Also removes a session whose data something else damaged, which every other method
        refuses with ``CorruptDataError``.
        """
        tombstone_ms = int(self._settings.tombstone_ttl * 1000)
        created = int(self._write(_lua.SESSION_DELETE, self._clock.now_text(), tombstone_ms))
        if created > 0:  # -1: messages stamped after this delete keep the session (see Lua)
            self._client._unlist_sessions([(self._id, created)])
        return created != 0

    def export(self) -> dict[str, Any]:
        """Return the whole session as a JSON-able dict, for ``client.import_session``.

        Raises:
            NotFoundError: the session does not exist.
        """
        info, messages = self._read(True)
        if info is None:
            raise self._not_found()
        return export_session(info, messages)

    def _not_found(self) -> NotFoundError:
        return NotFoundError(
            f"session {self._id!r} does not exist in namespace {self._namespace!r}",
            namespace=self._namespace,
            session=self._id,
            key=self._keys.meta,
        )
