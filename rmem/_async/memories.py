"""Long-term memories: records of a namespace, searched by meaning, by words, or both."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rmem import _lua
from rmem._errors import BackendError, CorruptDataError, NotFoundError, RmemError, ValidationError
from rmem._hlc import parse_stamp
from rmem._ids import new_id
from rmem._keys import memory_key, memory_keys, sync_channel
from rmem._lua import Arg, ScriptCall
from rmem._memory_core import (
    TAG_SEPARATOR,
    MemoryRecord,
    Mode,
    SearchHit,
    aembed_with,
    check_k,
    check_metadata,
    check_mode,
    check_query,
    check_record_id,
    check_tags,
    check_text,
    check_ttl_seconds,
    check_vector,
    check_where,
    declared_changes,
    decode_record,
    field_form,
    index_words,
    record_fields,
    text_digest,
    time_ms,
)
from rmem._search_local import (
    Doc,
    LocalIndex,
    coverage,
    fuse_hybrid,
    hybrid_depth,
    tokenize,
)
from rmem._search_redis import (
    FILTER_PAGE,
    IndexSpec,
    check_compatible,
    create_command,
    filter_command,
    filter_expression,
    parse_reply,
    text_command,
    text_of,
    vector_command,
)

if TYPE_CHECKING:
    from rmem._async.client import AsyncClient

log = logging.getLogger("rmem.memories")

_UNSET: Any = object()
_PUT_CHUNK = 256  # records per memory_put script call in add_many
_LOAD_CHUNK = 500  # records read per round trip when loading a namespace for local search
_WRITTEN = 0
_ITEM_KEYS = frozenset(("text", "id", "tags", "metadata", "vector", "ttl"))
_NAMESPACE_KEY_TYPES = ("zset", "hash", "hash", "hash", "stream")  # MemoryKeys, in order


@dataclass(slots=True)
class _LocalCache:
    rev: int = -1
    index: LocalIndex = field(default_factory=LocalIndex)
    records: dict[str, MemoryRecord] = field(default_factory=dict)
    log_id: str = ""  # the newest change log entry this copy reflects


@dataclass(slots=True)
class SearchState:
    """What a client (and its namespace views) learned about search on its server."""

    engine: Literal["redisearch", "local"] | None = None  # found on first use
    # In-process copies are updated in place: one refresh-and-search at a time per client.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    indexed: set[str] = field(default_factory=set)  # namespaces whose index was checked
    local: dict[str, _LocalCache] = field(default_factory=dict)
    damaged: set[str] = field(default_factory=set)  # keys already logged as skipped


class AsyncMemories:
    """The long-term memories of one namespace: ``client.memories``.

    Each write is one atomic script run; records carry a hybrid logical clock stamp. A write
    made now replaces what Redis holds, whatever the hosts' clocks say (the script stamps it
    after the stored record or delete); a write replayed after an outage keeps its stamp and
    loses to a later one (docs/decisions.md, 42).
    Search uses RediSearch when the server has it, else runs in process (``health()`` says
    which). A record damaged by another writer raises ``CorruptDataError`` (naming its key)
    when read or written, and is never a search hit.
    """

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._backend = client._backend
        self._settings = client._backend.settings
        self._ns = client.namespace
        self._keys = memory_keys(self._ns)
        self._count_keys = (self._keys.ids, self._keys.meta, self._keys.log)
        self._channel = sync_channel(self._ns)
        self._count_args: tuple[Arg, ...] = (self._settings.change_log_maxlen,)
        self._state: SearchState = client._search_state
        self._embedder = client.embedder
        settings = self._settings
        self._spec = IndexSpec(
            self._ns,
            client.vector_dim,
            settings.memory_fields,
            settings.hnsw_m,
            settings.hnsw_ef_construction,
        )

    def __repr__(self) -> str:
        return f"<AsyncMemories namespace={self._ns!r}>"

    # ------------------------------------------------------------ writes

    async def add(
        self,
        text: str,
        *,
        id: str | None = None,
        tags: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        vector: Sequence[float] | None = None,
        ttl: float | None = None,
        dedupe: bool = False,
    ) -> MemoryRecord:
        """Store one record and return it; an ``id`` that exists already is replaced.

        Args:
            text: what to remember (non-blank, at most ``max_message_bytes`` of UTF-8).
            id: the record id (1-256 characters); assigned, time-ordered, when None.
            tags: labels for ``search(tags=...)`` and ``forget(tags=...)``.
            metadata: JSON-like dict; its ``Settings.memory_fields`` keys feed ``where=``.
            vector: the embedding; made by the client's embedder when None.
            ttl: seconds until the record expires; None keeps it.
            dedupe: when a live record of this namespace holds the same text (compared after
                Unicode normalisation, case folding and whitespace collapsing), return it and
                write nothing.

        Raises:
            ValidationError: bad input (nothing is written), including a vector whose
                dimension is not the index's.
            CorruptDataError: the record's hash, its tombstone or the namespace's revision
                was damaged by something else (``key`` names it); nothing is written.
                ``delete(id)`` heals a damaged record.
        """
        records = await self.add_many(
            [
                {
                    "text": text,
                    "id": id,
                    "tags": tags,
                    "metadata": metadata,
                    "vector": vector,
                    "ttl": ttl,
                }
            ],
            dedupe=dedupe,
        )
        return records[0]

    async def add_many(
        self, items: Iterable[str | Mapping[str, Any]], *, dedupe: bool = False
    ) -> list[MemoryRecord]:
        """Store many records in one round trip and return them in order.

        Each item is a text, or a dict with ``text`` and any of ``add``'s keywords (``id``,
        ``tags``, ``metadata``, ``vector``, ``ttl``). Texts without a vector are embedded in
        one batch.

        Raises:
            ValidationError: any bad item; the whole batch is refused and nothing is written.
            CorruptDataError: as for :meth:`add`, for any item; nothing is written.
        """
        if not isinstance(dedupe, bool):
            raise ValidationError(f"dedupe must be True or False, not {dedupe!r}")
        prepared = [self._prepare(item, n) for n, item in enumerate(_as_list(items))]
        if not prepared:
            return []
        missing = [p for p in prepared if p.vector is None]
        if missing and self._embedder is not None:
            vectors = await self._embed([p.text for p in missing])
            for p, vec in zip(missing, vectors, strict=True):
                p.vector = vec
        await self._ready()
        clock = self._client._clock
        steps: list[ScriptCall | Sequence[Arg]] = []
        for start in range(0, len(prepared), _PUT_CHUNK):
            chunk = prepared[start : start + _PUT_CHUNK]
            keys = [*self._keys, *(memory_key(self._ns, p.id) for p in chunk)]
            args: list[Arg] = [self._channel, int(dedupe), *self._log_args()]
            for p in chunk:
                fields = record_fields(
                    p.text, p.tags, p.metadata, p.vector, self._ns, self._settings.memory_fields
                )
                p.stamp = clock.now_text()
                args += [p.id, p.stamp, p.digest, p.ttl_ms, len(fields) // 2]
                args += fields
            steps.append(ScriptCall(_lua.MEMORY_PUT, keys, args))
        replies = await self._write(steps, [p.id for p in prepared])
        flat = [value for reply in replies for value in reply]
        out: list[MemoryRecord] = []
        reread: list[tuple[int, str]] = []
        moved = ""
        for n, p in enumerate(prepared):
            status, rid, created, updated, stored = flat[5 * n : 5 * n + 5]
            if status == _WRITTEN:
                stored = text_of(stored)
                if stored != p.stamp:  # Redis placed it after a write stamped by another clock
                    p.stamp, moved = stored, max(moved, stored)
            else:  # deduplicated: the record that holds the same text is reread
                reread.append((n, text_of(rid)))
            out.append(p.record(self._ns, int(created), int(updated)))
        if moved:  # later writes of this client stamp after it (lua/_stamp.lua)
            clock.observe(parse_stamp(moved))
        rereading = {n for n, _ in reread}
        self._changed(
            [p.id for p in prepared], [r for n, r in enumerate(out) if n not in rereading]
        )
        if reread:
            current = await self._get_many([rid for _, rid in reread])
            for (n, rid), record in zip(reread, current, strict=True):
                if record is None:
                    raise NotFoundError(
                        f"memory {rid!r}, which holds the same text, was deleted by another "
                        "write before it could be read back",
                        namespace=self._ns,
                    )
                out[n] = record
        return out

    async def update(
        self,
        id: str,
        *,
        text: str = _UNSET,
        tags: Iterable[str] = _UNSET,
        metadata: Mapping[str, Any] | None = _UNSET,
        vector: Sequence[float] = _UNSET,
    ) -> MemoryRecord:
        """Change some fields of a record and return it as stored.

        A new ``text`` without a ``vector`` is re-embedded by the client's embedder; without
        an embedder the record's old vector is dropped (it would describe the old text).

        Raises:
            ValidationError: bad input or no field given; nothing changes.
            NotFoundError: no live record has this id.
            CorruptDataError: the record's hash or the namespace's revision was damaged by
                something else (``key`` names it); nothing changes.
        """
        rid = check_record_id(id, self._ns)
        to_set: list[Arg] = []
        to_remove: list[str] = []
        digest = ""
        new_vector: bytes | None = None
        if text is not _UNSET:
            text = check_text(text, self._ns, self._settings.max_message_bytes)
            digest = text_digest(text)
            to_set += ["text", text, "words", index_words(text)]
        if tags is not _UNSET:
            to_set += ["tags", TAG_SEPARATOR.join(check_tags(tags, self._ns))]
        if metadata is not _UNSET:
            pairs, removed = declared_changes(
                check_metadata(metadata, self._ns, self._settings.max_message_bytes),
                self._settings.memory_fields,
            )
            to_set += pairs
            to_remove += removed
        if vector is not _UNSET:
            new_vector = check_vector(vector, self._spec.dim, self._ns)
        elif text is not _UNSET and self._embedder is not None:
            new_vector = (await self._embed([text]))[0]
        elif text is not _UNSET:
            to_remove.append("vec")
        if new_vector is not None:
            to_set += ["vec", new_vector]
        if not to_set and not to_remove:
            raise ValidationError("update needs at least one of text, tags, metadata, vector")
        await self._ready()
        key = memory_key(self._ns, rid)
        stamp = self._client._clock.now_text()
        args: list[Arg] = [self._channel, rid, stamp, digest, *self._log_args()]
        args += [len(to_set) // 2, *to_set, len(to_remove), *to_remove]
        reply, fields = await self._write(
            [ScriptCall(_lua.MEMORY_UPDATE, [*self._keys, key], args), ("HGETALL", key)], [rid]
        )
        if reply[0] == 0:
            self._changed([rid])
            raise NotFoundError(f"no memory {rid!r} in namespace {self._ns!r}", namespace=self._ns)
        if text_of(reply[3]) != stamp:  # Redis placed it after a write stamped by another clock
            self._client._clock.observe(parse_stamp(text_of(reply[3])))
        record = decode_record(self._ns, key, _as_dict(fields))
        self._changed([rid], [record])
        return record

    async def delete(self, id: str) -> bool:
        """Delete a record; return whether a live record was deleted.

        A tombstone remembers the delete, so a write made before it and replayed after an
        outage cannot bring the record back. A record hash damaged by something else is
        removed whatever it holds (and True returned): deleting is how a damaged record is
        healed.

        Raises:
            CorruptDataError: the record key holds another type of value, or the namespace's
                revision is damaged (``key`` names it); nothing is deleted.
        """
        rid = check_record_id(id, self._ns)
        return await self._delete_ids([rid]) == 1

    async def forget(
        self,
        *,
        tags: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
        all: bool = False,
    ) -> int:
        """Delete every record that has any of ``tags`` and matches ``where``; return how many.

        The records' text, vectors and index entries are gone once this returns: no search
        returns them afterwards. ``all=True`` (with no filter) forgets the whole namespace.

        ``all=True`` deletes every record the namespace lists, damaged ones included (see
        ``CorruptDataError``); filters match what search can see.

        Raises:
            ValidationError: neither a filter nor ``all=True`` was given.
        """
        if not isinstance(all, bool):
            raise ValidationError(f"all must be True or False, not {all!r}", namespace=self._ns)
        tag_list = check_tags(tags, self._ns) if tags is not None else []
        conditions = check_where(where, self._settings.memory_fields)
        if not tag_list and not conditions and not all:
            raise ValidationError("forget needs tags=, where= or all=True", namespace=self._ns)
        if all and (tag_list or conditions):
            raise ValidationError("forget takes all=True or filters, not both")
        if all:
            listed = await self._backend.call("ZRANGE", self._keys.ids, 0, -1, namespace=self._ns)
            return await self._delete_ids([text_of(rid) for rid in listed])
        if await self._engine() == "redisearch":
            await self._ready()
            expr = filter_expression(tag_list or None, None, None, conditions)
            command = filter_command(self._spec, expr, 0)
            total = 0
            while True:
                (reply,) = await self._backend.pipeline([command], namespace=self._ns)
                _, hits = parse_reply(reply)
                ids = [h.fields[b"id"].decode() for h in hits if b"id" in h.fields]
                if not ids:
                    return total
                deleted = await self._delete_ids(ids)
                total += deleted
                if deleted == 0 and len(hits) < FILTER_PAGE:
                    return total
        cache = await self._local_cache()
        wanted = set(tag_list)
        ids = [
            r.id
            for r in cache.records.values()
            if (not wanted or wanted.intersection(r.tags)) and all_equal(r.metadata, conditions)
        ]
        return await self._delete_ids(ids)

    async def _delete_ids(self, ids: Sequence[str]) -> int:
        clock = self._client._clock
        steps: list[ScriptCall | Sequence[Arg]] = []
        for start in range(0, len(ids), _PUT_CHUNK):
            chunk = ids[start : start + _PUT_CHUNK]
            keys = [*self._keys, *(memory_key(self._ns, rid) for rid in chunk)]
            args: list[Arg] = [self._channel, *self._log_args()]
            for rid in chunk:
                args += [rid, clock.now_text()]
            steps.append(ScriptCall(_lua.MEMORY_DELETE, keys, args))
        if not steps:
            return 0
        replies = await self._write(steps, ids)
        self._changed(ids)
        return sum(int(v) for reply in replies for v in reply)

    def _changed(self, ids: Sequence[str], written: Sequence[MemoryRecord] = ()) -> None:
        # This client's own writes: its replica must not answer from before them.
        if self._client._sync is not None:
            self._client._sync.changed_records(self._ns, ids, written)

    # ------------------------------------------------------------ reads

    async def get(self, id: str) -> MemoryRecord | None:
        """Return the record ``id`` (with its vector), or None if there is none.

        Raises:
            CorruptDataError: the record's hash is damaged (``key`` names it).
        """
        rid = check_record_id(id, self._ns)
        if self._client._sync is not None and not self._backend.degraded:
            known, record = self._client._sync.record(self._ns, rid)
            if known:
                return record
        return (await self._get_many([rid]))[0]

    async def _get_many(self, ids: Sequence[str]) -> list[MemoryRecord | None]:
        keys = [memory_key(self._ns, rid) for rid in ids]
        out: list[MemoryRecord | None] = []
        for key, fields in zip(keys, await self._fetch(keys), strict=True):
            if isinstance(fields, CorruptDataError):
                raise fields
            if fields is None:
                out.append(None)
                continue
            _stored_vector(fields.get(b"vec"), self._spec.dim, self._ns, key)
            out.append(decode_record(self._ns, key, fields))
        return out

    async def _fetch(
        self, keys: Sequence[str]
    ) -> list[dict[bytes, bytes] | CorruptDataError | None]:
        """HGETALL each record hash: its fields, None when absent, or the error of a key that
        holds another type (written by something else)."""
        try:
            replies = await self._backend.pipeline(
                [("HGETALL", k) for k in keys], namespace=self._ns
            )
            return [_as_dict(r) if r else None for r in replies]
        except CorruptDataError:
            pass  # a key is not a hash (WRONGTYPE): find which, read the others
        kinds = [
            text_of(t)
            for t in await self._backend.batch([("TYPE", k) for k in keys], namespace=self._ns)
        ]
        hashes = [k for k, kind in zip(keys, kinds, strict=True) if kind == "hash"]
        found = (
            await self._backend.pipeline([("HGETALL", k) for k in hashes], namespace=self._ns)
            if hashes
            else []
        )
        by_key = dict(zip(hashes, found, strict=True))
        out: list[dict[bytes, bytes] | CorruptDataError | None] = []
        for key, kind in zip(keys, kinds, strict=True):
            if kind == "hash":
                out.append(_as_dict(by_key[key]) if by_key[key] else None)
            elif kind == "none":
                out.append(None)
            else:
                out.append(_wrong_type(self._ns, key, kind, "hash"))
        return out

    async def _write(
        self, steps: Sequence[ScriptCall | Sequence[Arg]], ids: Sequence[str]
    ) -> list[Any]:
        """Run a write pipeline; when it fails on a key of the wrong type, name that key."""
        try:
            return await self._backend.pipeline(steps, namespace=self._ns)
        except (BackendError, CorruptDataError) as exc:
            raise await self._damage(exc, ids) from exc

    async def _damage(self, exc: RmemError, ids: Sequence[str]) -> RmemError:
        # Any failed write is checked (a failing step may hide behind another step's error):
        # this costs a round trip only when something already went wrong.
        keys = [*self._keys, *(memory_key(self._ns, rid) for rid in ids)]
        wanted = [*_NAMESPACE_KEY_TYPES, *("hash" for _ in ids)]
        try:
            kinds = await self._backend.batch([("TYPE", k) for k in keys], namespace=self._ns)
        except RmemError:
            return exc  # cannot look: report what failed first
        for key, kind, want in zip(keys, map(text_of, kinds), wanted, strict=True):
            if kind not in ("none", want):
                return _wrong_type(self._ns, key, kind, want)
        return exc

    def _skip(self, exc: CorruptDataError) -> None:
        # Search leaves damaged records out (docs/decisions.md, 23); say so once per key.
        if exc.key not in self._state.damaged:
            self._state.damaged.add(exc.key or "")
            log.warning("rmem search skips a damaged record: %s", exc)

    async def count(self) -> int:
        """Return the number of live records in the namespace.

        Raises:
            CorruptDataError: the namespace's revision was damaged by something else.
        """
        reply = await self._backend.run(
            _lua.MEMORY_COUNT, self._count_keys, self._count_args, namespace=self._ns
        )
        return int(reply[0])

    async def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        k: int = 10,
        tags: Iterable[str] | None = None,
        mode: Mode = "hybrid",
        since: Any = None,
        until: Any = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[SearchHit]:
        """Return the ``k`` best records for ``query`` and/or ``vector``, best first.

        Args:
            query: words to look for; also embedded (when the client has an embedder and no
                ``vector`` is given) for the vector ranking.
            vector: search by this embedding instead of embedding ``query``.
            k: how many hits at most (1-1000).
            tags: keep records having any of these tags.
            mode: "vector" (cosine similarity), "text" (BM25 over words) or "hybrid"
                (reciprocal rank fusion of both rankings; the default).
            since, until: keep records created in this range (datetime or Unix seconds,
                both inclusive).
            where: keep records whose declared metadata fields equal these values.

        Equal scores are ordered by record id, on every engine. Hits carry no vector.
        A damaged record (one ``get`` raises CorruptDataError for) is never a hit, on every
        engine: it is logged once and left out, and the ``k`` best of the others are returned.

        Raises:
            ValidationError: bad arguments, e.g. ``mode="text"`` without a query, or a
                vector search with neither a vector nor an embedder.
        """
        k = check_k(k)
        mode = check_mode(mode)
        query = check_query(query)
        tag_list = check_tags(tags, self._ns) if tags is not None else None
        conditions = check_where(where, self._settings.memory_fields)
        since_ms, until_ms = time_ms(since, "since"), time_ms(until, "until")
        vec: bytes | None = None
        if vector is not None and mode != "text":
            vec = check_vector(vector, self._spec.dim, self._ns)
        elif query is not None and mode != "text" and self._embedder is not None:
            vec = (await self._embed([query]))[0]
        if mode == "vector" and vec is None:
            raise ValidationError(
                "vector search needs vector= or a client embedder", namespace=self._ns
            )
        if mode == "text" and not query:
            raise ValidationError("text search needs a query", namespace=self._ns)
        if mode == "hybrid" and vec is None and not query:
            raise ValidationError("search needs a query or a vector", namespace=self._ns)
        q = _Query(
            mode,
            k,
            query if mode != "vector" else None,
            vec,
            tag_list,
            since_ms,
            until_ms,
            conditions,
        )
        if await self._engine() == "redisearch":
            await self._ready()
            return await self._search_redis(q)
        return await self._search_local(q)

    async def _search_redis(self, q: _Query) -> list[SearchHit]:
        depth = hybrid_depth(q.k) if q.mode == "hybrid" else q.k
        skipped: set[str] = set()
        while True:
            # Damaged hits are left out; ask again for as many more as were left out.
            before = len(skipped)
            hits, full = await self._search_redis_at(q, depth + before, skipped)
            if len(skipped) == before or not full:
                return hits

    async def _search_redis_at(
        self, q: _Query, depth: int, skipped: set[str]
    ) -> tuple[list[SearchHit], bool]:
        """Search at ``depth``; add the keys of damaged hits to ``skipped``. Also returns
        whether a ranking was full (deeper hits may exist)."""
        expr = filter_expression(q.tags, q.since_ms, q.until_ms, q.where)
        commands: list[Sequence[Arg]] = []
        kinds: list[str] = []
        if q.vec is not None:
            ef = self._settings.hnsw_ef_runtime
            commands.append(vector_command(self._spec, q.vec, depth, expr, ef))
            kinds.append("vector")
        if q.text is not None:
            command = text_command(self._spec, q.text, depth, expr)
            if command is not None:
                commands.append(command)
                kinds.append("text")
        if not commands:
            return [], False
        replies = await self._backend.pipeline(commands, namespace=self._ns)
        records: dict[str, MemoryRecord] = {}
        rankings: list[list[tuple[str, float]]] = []
        full = False
        for kind, reply in zip(kinds, replies, strict=True):
            _, raw = parse_reply(reply)
            full = full or len(raw) >= depth
            ranking: list[tuple[str, float]] = []
            for hit in raw:
                if b"id" not in hit.fields:  # expired between indexing and loading
                    skipped.add(hit.key)
                    continue
                try:
                    record = decode_record(self._ns, hit.key, hit.fields, with_vector=False)
                    if kind == "vector":
                        score = 1.0 - float(hit.fields[b"vector_distance"])
                    else:
                        score = float(hit.score or 0.0)
                except CorruptDataError as exc:
                    self._skip(exc)
                    skipped.add(hit.key)
                    continue
                if not math.isfinite(score):  # a stored vector with no direction (NaN)
                    skipped.add(hit.key)
                    continue
                records[record.id] = record
                ranking.append((record.id, score))
            ranking.sort(key=lambda pair: (-pair[1], pair[0]))
            rankings.append(ranking)
        if q.mode == "hybrid":
            by_vector = rankings[0] if kinds[0] == "vector" else []
            by_text = rankings[-1] if kinds[-1] == "text" else []
            words = set(tokenize(q.text or ""))
            text_hits = [(rid, coverage(words, tokenize(records[rid].text))) for rid, _ in by_text]
            fused = fuse_hybrid([rid for rid, _ in by_vector], text_hits)[: q.k]
        else:
            fused = rankings[0][: q.k]
        hits = [SearchHit.model_construct(record=records[rid], score=s) for rid, s in fused]
        return hits, full

    async def _search_local(self, q: _Query) -> list[SearchHit]:
        async with self._state.lock:
            return await self._search_copy(q)

    async def _search_copy(self, q: _Query) -> list[SearchHit]:
        cache = await self._local_cache()
        now = time.time()
        alive = [r for r in cache.records.values() if r.expires_at is None or r.expires_at > now]
        depth = q.k + len(cache.records) - len(alive)  # room for hits dropped as expired
        query_vector = np.frombuffer(q.vec, dtype=np.float32) if q.vec is not None else None
        if q.mode == "vector" and query_vector is None:
            return []
        found = cache.index.search(
            mode=q.mode,
            k=depth,
            text=q.text,
            vector=query_vector,
            tags=q.tags,
            since_ms=q.since_ms,
            until_ms=q.until_ms,
            where=q.where,
        )
        hits = []
        for rid, score in found:
            record = cache.records[rid]
            if record.expires_at is None or record.expires_at > now:
                hits.append(SearchHit.model_construct(record=record, score=score))
        return hits[: q.k]

    async def _local_cache(self) -> _LocalCache:
        # One script run says whether the in-process copy is exact (same revision). If not,
        # the change log after the copy's last entry names the records to reload, unless the
        # log was trimmed past that entry: then the whole namespace is reloaded.
        _, rev, newest, oldest = await self._backend.run(
            _lua.MEMORY_COUNT, self._count_keys, self._count_args, namespace=self._ns
        )
        rev, newest, oldest = int(rev), text_of(newest), text_of(oldest)
        slot = self._cache_slot()
        cache = self._state.local.get(slot)
        if cache is not None and cache.rev == rev:
            return cache
        if cache is None or not cache.log_id or _after(oldest, cache.log_id):
            cache = await self._load_all(rev, newest)
        else:
            entries = await self._backend.call(
                "XRANGE", self._keys.log, "(" + cache.log_id, newest or "+", namespace=self._ns
            )
            changed = list(dict.fromkeys(_entry_id(entry) for entry in entries))
            for rid, loaded in zip(changed, await self._load(changed), strict=True):
                if loaded is None:
                    cache.index.remove(rid)
                    cache.records.pop(rid, None)
                else:
                    self._cache_put(cache, *loaded)
            cache.rev, cache.log_id = rev, newest
        self._state.local[slot] = cache
        return cache

    def _cache_slot(self) -> str:
        # While degraded, the copy follows the fallback's local store, whose revisions and log
        # ids have nothing to do with Redis's: it gets a slot of its own for each outage.
        fallback = self._backend.fallback
        if fallback is not None and fallback.active:
            return f"\0outage {fallback.figures.outages}\0{self._ns}"
        return self._ns

    async def _load_all(self, rev: int, log_id: str) -> _LocalCache:
        fresh = _LocalCache(rev=rev, index=LocalIndex(self._spec.dim), log_id=log_id)
        ids = await self._backend.call("ZRANGE", self._keys.ids, 0, -1, namespace=self._ns)
        for start in range(0, len(ids), _LOAD_CHUNK):
            chunk = [i.decode() for i in ids[start : start + _LOAD_CHUNK]]
            for loaded in await self._load(chunk):
                if loaded is not None:
                    self._cache_put(fresh, *loaded)
        return fresh

    def _cache_put(self, cache: _LocalCache, vector: Any, record: MemoryRecord) -> None:
        cache.records[record.id] = record
        cache.index.upsert(
            Doc(
                id=record.id,
                text=record.text,
                tags=frozenset(record.tags),
                created_ms=round(record.created_at * 1000),
                fields=declared_forms(record.metadata, self._settings.memory_fields),
                vector=vector,
            )
        )

    async def _load(
        self, ids: Sequence[str]
    ) -> list[tuple[np.ndarray | None, MemoryRecord] | None]:
        keys = [memory_key(self._ns, rid) for rid in ids]
        out: list[tuple[np.ndarray | None, MemoryRecord] | None] = []
        for key, fields in zip(keys, await self._fetch(keys), strict=True):
            try:
                if isinstance(fields, CorruptDataError):
                    raise fields
                if fields is None:
                    out.append(None)
                    continue
                record = decode_record(self._ns, key, fields, with_vector=False)
                raw = fields.get(b"vec")
                vector = _stored_vector(raw, self._spec.dim, self._ns, key)
            except CorruptDataError as exc:
                self._skip(exc)  # searched as if absent, as on RediSearch
                out.append(None)
                continue
            out.append((vector, record))
        return out

    # ------------------------------------------------------------ plumbing

    def _log_args(self) -> list[Arg]:
        settings = self._settings
        return [settings.change_log_maxlen, settings.max_stamp_ahead_ms]

    def _prepare(self, item: str | Mapping[str, Any], n: int) -> _Prepared:
        ns = self._ns
        if isinstance(item, str):
            item = {"text": item}
        elif not isinstance(item, Mapping):
            raise ValidationError(
                f"item {n}: expected a text or a dict, not {type(item).__name__}", namespace=ns
            )
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            names = sorted(map(repr, unknown))
            raise ValidationError(f"item {n}: unknown keys {', '.join(names)}", namespace=ns)
        try:
            settings = self._settings
            text = check_text(item.get("text"), ns, settings.max_message_bytes)
            rid = item.get("id")
            vector = item.get("vector")
            return _Prepared(
                id=new_id() if rid is None else check_record_id(rid, ns),
                text=text,
                tags=check_tags(item.get("tags"), ns),
                metadata=check_metadata(item.get("metadata"), ns, settings.max_message_bytes),
                vector=None if vector is None else check_vector(vector, self._spec.dim, ns),
                ttl_ms=check_ttl_seconds(item.get("ttl"), ns),
                digest=text_digest(text),
            )
        except ValidationError as exc:
            raise ValidationError(f"item {n}: {exc}", namespace=ns) from None

    async def _embed(self, texts: list[str]) -> list[bytes]:
        assert self._embedder is not None and self._spec.dim is not None
        return await aembed_with(self._embedder, texts, self._spec.dim)

    async def _engine(self) -> Literal["redisearch", "local"]:
        if self._backend.degraded:
            return "local"  # the fallback's store searches in process, with the same rules
        state = self._state
        if state.engine is None:
            choice = self._settings.search_engine
            if choice == "local":
                state.engine = "local"
            else:
                try:
                    await self._backend.call("FT._LIST", namespace=self._ns)
                    state.engine = "redisearch"
                except BackendError as exc:
                    if choice == "redisearch":
                        raise BackendError(
                            f"search_engine='redisearch' but Redis at {self._backend.url} has "
                            f"no search module ({exc})",
                            namespace=self._ns,
                        ) from None
                    state.engine = "local"
        return state.engine

    async def _ready(self) -> None:
        # The index is made (or checked) once per namespace per client, before the first write
        # or search, so a mismatching index fails loudly instead of returning nothing.
        if await self._engine() != "redisearch" or self._ns in self._state.indexed:
            return
        try:
            await self._backend.call(*create_command(self._spec), namespace=self._ns)
        except BackendError as exc:
            if "already exists" not in str(exc).lower():
                raise
        (info,) = await self._backend.pipeline([("FT.INFO", self._spec.name)], namespace=self._ns)
        check_compatible(self._spec, info)
        self._state.indexed.add(self._ns)


@dataclass(frozen=True, slots=True)
class _Query:
    """A checked search, as both engines take it."""

    mode: Mode
    k: int
    text: str | None  # None in vector mode
    vec: bytes | None
    tags: list[str] | None
    since_ms: int | None
    until_ms: int | None
    where: dict[str, str]


@dataclass(slots=True)
class _Prepared:
    id: str
    text: str
    tags: list[str]
    metadata: dict[str, Any]
    vector: bytes | None
    ttl_ms: int
    digest: str
    stamp: str = ""

    def record(self, namespace: str, created: int, updated: int) -> MemoryRecord:
        return MemoryRecord.model_construct(
            id=self.id,
            namespace=namespace,
            text=self.text,
            tags=self.tags,
            metadata=self.metadata,
            vector=np.frombuffer(self.vector, dtype=np.float32).tolist() if self.vector else None,
            created_at=created / 1000,
            updated_at=updated / 1000,
            stamp=self.stamp,
            expires_at=(updated + self.ttl_ms) / 1000 if self.ttl_ms else None,
        )


def _as_list(items: Iterable[str | Mapping[str, Any]]) -> list[str | Mapping[str, Any]]:
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ValidationError("add_many takes a list of texts or dicts")
    return list(items)


def _as_dict(reply: Any) -> dict[bytes, bytes]:
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _wrong_type(namespace: str, key: str, kind: str, wanted: str) -> CorruptDataError:
    return CorruptDataError(
        f"{key} holds a {kind}, not the {wanted} rmem keeps there", namespace=namespace, key=key
    )


def _stored_vector(
    raw: bytes | None, dim: int | None, namespace: str, key: str
) -> np.ndarray | None:
    """A record's stored vector for the in-process index.

    Raises CorruptDataError when it is not ``dim`` float32 values (RediSearch does not index
    such a record at all). A vector that is not finite or all zeros has no direction: like
    RediSearch's NaN distance, it never ranks in a vector search, so it is returned as None.
    """
    if not raw:
        return None
    if len(raw) % 4 or (dim is not None and len(raw) != 4 * dim):
        raise CorruptDataError(
            f"memory record {key} has a vector of {len(raw)} bytes, not {dim} float32 values",
            namespace=namespace,
            key=key,
        )
    vector = np.frombuffer(raw, dtype=np.float32)
    return vector if np.isfinite(vector).all() and vector.any() else None


def all_equal(metadata: Mapping[str, Any], conditions: Mapping[str, str]) -> bool:
    """Whether every declared field in ``conditions`` has that string form in ``metadata``."""
    return all(field_form(metadata.get(name)) == value for name, value in conditions.items())


def declared_forms(metadata: Mapping[str, Any], declared: Sequence[str]) -> dict[str, str]:
    """The indexed string forms of the declared metadata fields a record has."""
    out = {}
    for name in declared:
        form = field_form(metadata.get(name))
        if form is not None:
            out[name] = form
    return out


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _after(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes after ``b`` (False when ``a`` is empty)."""
    return bool(a) and _stream_id(a) > _stream_id(b)


def _entry_id(entry: Any) -> str:
    # A change log entry is [stream id, [field, value, ...]] with field b"i" the record id.
    fields = entry[1]
    at = list(fields).index(b"i")
    return text_of(fields[at + 1])
