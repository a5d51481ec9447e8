"""The LangGraph store without I/O: checks, encoding, and each batch as a plan of round trips.

A batch is planned once for both APIs. :meth:`StoreCore.plan_batch` is a generator that yields
what it needs — a round trip (a list of pipeline steps for rmem's backend) or an :class:`Embed`
request — and receives the replies; ``RmemStore`` runs it with the sync backend and
``AsyncRmemStore`` with the async one. A backend error is thrown back into the plan, which
lets setup tell "no search module" from other failures.

Order inside a batch is LangGraph's PostgresStore's: gets, searches and namespace listings
first, then the puts (the last put of a key wins), so every read of a batch sees the store as
it was before the batch's writes. Every op is checked, and every value encoded and embedded,
before the first round trip, so a bad op writes nothing.

With an :class:`~rmem.integrations._langgraph_cache.ItemCache` (a client with a sync thread),
gets of items read before are answered from it without a round trip; puts drop what they
write from it before and after their script.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, TypeVar, cast

import numpy as np
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

from rmem import _lua
from rmem._codec import pack, unpack
from rmem._errors import BackendError, CorruptDataError, RmemError, ValidationError
from rmem._keys import (
    StoreKeys,
    decode_path,
    encode_path,
    item_key,
    keys_zset,
    store_keys,
    sync_channel,
    vector_key,
)
from rmem._lua import Script
from rmem._search_redis import parse_reply, text_of
from rmem._settings import Settings
from rmem._validate import MAX_TTL
from rmem.integrations import _langgraph_query as q
from rmem.integrations._json import check_json
from rmem.integrations._langgraph_cache import MISSING, Cached, Found, ItemCache, Ticket

LGSTORE_PUT: Script = _lua.script("lgstore_put")
LGSTORE_TOUCH: Script = _lua.script("lgstore_touch")

T = TypeVar("T")
Arg = str | bytes | int | float


class ScriptStep(NamedTuple):
    """A script run in a round trip; each driver turns it into its backend's ScriptCall."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Arg]


Step = ScriptStep | Sequence[Arg]
Round = list[Step]


class Embed(NamedTuple):
    """A request to embed texts (as documents, or as one search query each)."""

    texts: list[str]
    query: bool


Request = Round | Embed
Plan = Generator[Request, Any, T]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GET_FIELDS = ("val", "created", "updated", "ttl", "nv", "seq")
_PUT_CHUNK = 128  # items per lgstore_put call
_MAX_PAGE = 1000  # most candidates read per round trip when a filter is checked in Python
_MAX_RETRIES = 8


class InvalidNamespace(ValidationError, InvalidNamespaceError):
    """A namespace LangGraph refuses: both an ``rmem.ValidationError`` and LangGraph's
    ``InvalidNamespaceError``, raised before anything in the batch is written."""


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """A checked ``index=`` config: the embedder, the fields to embed, the vector index."""

    embeddings: Embeddings
    fields: tuple[tuple[str, str | list[str]], ...]
    spec: q.VectorSpec


def parse_index(index: Mapping[str, Any] | None, settings: Settings) -> IndexSettings | None:
    """Check a LangGraph ``IndexConfig`` (plus PostgresStore's ``distance_type`` and
    ``ann_index_config.vector_type``, which map onto RediSearch's metric and float type).

    Raises:
        ValidationError: missing or bad ``dims``/``embed``, or an unknown distance or type.
    """
    if index is None:
        return None
    if not isinstance(index, Mapping):
        raise ValidationError(f"index must be a dict (LangGraph IndexConfig), not {index!r}")
    dims = index.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValidationError(f"index['dims'] must be a positive int, not {dims!r}")
    if index.get("embed") is None:
        raise ValidationError("index['embed'] is required (Embeddings, function or provider)")
    distance = index.get("distance_type", "cosine")
    if distance not in q.METRICS:
        raise ValidationError(f"index['distance_type'] must be one of {sorted(q.METRICS)}")
    vector_type = (index.get("ann_index_config") or {}).get("vector_type", "vector")
    dtypes = {"vector": "float32", "halfvec": "float16"}
    if vector_type not in dtypes:
        raise ValidationError("index['ann_index_config']['vector_type'] must be vector|halfvec")
    paths = index.get("fields") or ["$"]
    if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
        raise ValidationError("index['fields'] must be a list of str paths")
    spec = q.VectorSpec(
        dims,
        cast(q.Distance, distance),
        cast(Literal["float32", "float16"], dtypes[vector_type]),
        settings.hnsw_m,
        settings.hnsw_ef_construction,
    )
    fields = tuple((p, p if p == "$" else tokenize_path(p)) for p in paths)
    return IndexSettings(ensure_embeddings(index["embed"]), fields, spec)


def check_ttl_config(ttl: Mapping[str, Any] | None) -> TTLConfig | None:
    """Check a LangGraph ``TTLConfig`` (minutes) and return it as a dict."""
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        raise ValidationError(f"ttl must be a dict (LangGraph TTLConfig), not {ttl!r}")
    default = ttl.get("default_ttl")
    if default is not None:
        ttl_ms(default)
    return cast(TTLConfig, dict(ttl))


def ttl_ms(minutes: object) -> int:
    """A TTL in minutes (LangGraph's unit) as whole ms; 0 for None."""
    if minutes is None:
        return 0
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise ValidationError(f"ttl must be minutes (int or float) or None, not {minutes!r}")
    if not math.isfinite(minutes) or minutes <= 0 or minutes * 60 > MAX_TTL:
        raise ValidationError(f"ttl must be a positive number of minutes, not {minutes!r}")
    return math.ceil(minutes * 60_000)


# ---------------------------------------------------------------- op checks


def check_labels(labels: object) -> tuple[str, ...]:
    """Return a namespace (or match path) as a tuple after LangGraph's label rules.

    Raises:
        InvalidNamespace: a label that is not a str, is empty, or holds "." or NUL.
    """
    if isinstance(labels, str):
        labels = (labels,)
    if not isinstance(labels, tuple | list):
        raise InvalidNamespace(f"a namespace must be a tuple of str, not {labels!r}")
    out = tuple(labels)
    for label in out:
        if not isinstance(label, str):
            raise InvalidNamespace(
                f"Invalid namespace label {label!r} in {out}: labels must be str, "
                f"not {type(label).__name__}"
            )
        if not label:
            raise InvalidNamespace(f"Namespace labels cannot be empty strings: {out}")
        if "." in label or "\x00" in label:
            raise InvalidNamespace(
                f"Invalid namespace label {label!r} in {out}: labels cannot contain '.' or NUL"
            )
    return out


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise ValidationError(f"an item key must be a str, not {type(key).__name__}")
    return key


# ---------------------------------------------------------------- prepared ops


@dataclass(slots=True)
class _Put:
    labels: tuple[str, ...]
    path: str
    key: str
    packed: bytes | None  # None: delete
    ttl_ms: int
    anc: str
    kv: str
    texts: list[str] = field(default_factory=list)
    vectors: list[bytes] = field(default_factory=list)
    keys_for: int = 0  # vector keys sent (at least the vectors stored before)


@dataclass(slots=True)
class _Read:
    """An item read with refresh_ttl whose TTL may need restarting."""

    path: str
    key: str
    seq: bytes
    nv: int


# ---------------------------------------------------------------- the store logic


class StoreCore:
    """Everything a LangGraph store over rmem does, as plans (see the module docstring)."""

    def __init__(
        self,
        namespace: str,
        settings: Settings,
        index: IndexSettings | None,
        cache: ItemCache | None = None,
    ) -> None:
        self.namespace = namespace
        self.settings = settings
        self.index = index
        self.cache = cache
        self.keys: StoreKeys = store_keys(namespace)
        self._channel = sync_channel(namespace)
        self.search_module: bool | None = None  # found by setup
        self._vector_guess = len(index.fields) if index else 0

    # ------------------------------------------------------------ setup

    def plan_setup(self) -> Plan[None]:
        """Create the item index (and the vector index with ``index=``) if missing.

        Raises:
            SchemaMismatchError: the store's vector index has another dimension or metric.
        """
        try:
            yield [("FT._LIST",)]
        except BackendError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            self.search_module = False
            return
        commands = [q.create_command(q.item_schema(self.keys))]
        if self.index is not None:
            commands.append(q.create_command(q.vector_schema(self.keys, self.index.spec)))
        for command in commands:
            try:
                yield [command]
            except BackendError as exc:
                if "already exists" not in str(exc).lower():
                    raise
        if self.index is not None:
            (info,) = yield [("FT.INFO", self.keys.vector_index)]
            q.check_vector_index(self.keys.vector_index, self.index.spec, info, self.namespace)
        self.search_module = True

    # ------------------------------------------------------------ batch

    def plan_batch(self, ops: Iterable[Op]) -> Plan[list[Result]]:
        """Run ``ops`` and return one result per op, in order."""
        ops = list(ops)
        gets: list[tuple[int, GetOp, tuple[str, ...]]] = []
        puts: dict[tuple[tuple[str, ...], str], _Put] = {}
        searches: list[tuple[int, SearchOp, tuple[str, ...], dict[str, Any] | None]] = []
        lists: list[tuple[int, ListNamespacesOp]] = []
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                gets.append((i, op, check_labels(op.namespace)))
                _check_key(op.key)
            elif isinstance(op, PutOp):
                put = self._prepare_put(op)
                puts.pop((put.labels, put.key), None)  # the last put of a key wins
                puts[(put.labels, put.key)] = put
            elif isinstance(op, SearchOp):
                prefix = check_labels(op.namespace_prefix)
                flt = q.check_filter(op.filter)
                _check_count(op.limit, "limit", 0)
                _check_count(op.offset, "offset", 0)
                if op.query is not None and not isinstance(op.query, str):
                    raise ValidationError(f"query must be a str, not {op.query!r}")
                searches.append((i, op, prefix, flt))
            elif isinstance(op, ListNamespacesOp):
                self._check_list(op)
                lists.append((i, op))
            else:
                raise ValidationError(f"unknown store operation {op!r}")
        results: list[Result] = [None] * len(ops)
        if self.search_module is None:
            yield from self.plan_setup()
        to_embed = [p for p in puts.values() if p.texts]
        if to_embed:
            vectors = yield Embed([t for p in to_embed for t in p.texts], query=False)
            self._attach_vectors(to_embed, vectors)
        touch: list[_Read] = []
        if gets:
            yield from self._plan_gets(gets, results, touch)
        for i, op, prefix, flt in searches:
            results[i] = yield from self._plan_search(op, prefix, flt, touch)
        if lists:
            (live,) = yield [("ZRANGE", self.keys.registry, f"({now_ms()}", "+inf", "BYSCORE")]
            namespaces = [decode_path(text_of(p)) for p in live]
            for i, lop in lists:
                results[i] = _list_namespaces(namespaces, lop)
        if touch:
            yield self._touch_round(touch)
        if puts:
            written = list(puts.values())
            if self.cache is None:
                yield from self._plan_puts(written)
            else:
                # Before: a read racing the write cannot fill in what it is replacing. After:
                # nor can one that read the old value while the script ran.
                refs = [f"{p.path}/{p.key}" for p in written]
                self.cache.changed(refs)
                try:
                    yield from self._plan_puts(written)
                finally:
                    self.cache.changed(refs)
        return results

    def plan_get(self, namespace: object, key: object, refresh_ttl: bool) -> Plan[Item | None]:
        """``plan_batch([GetOp(namespace, key, refresh_ttl)])``, without planning a batch.

        A single get is the store's most frequent call (LangGraph's ``BaseStore.get``): served
        by the item cache when it holds the item, else one ``HMGET``, then the TTL touch when
        asked and the item has a TTL, as in a batch.

        Raises:
            InvalidNamespace: a label LangGraph refuses.
            ValidationError: a key that is not a str.
        """
        labels = check_labels(namespace)
        key = _check_key(key)
        path = encode_path(labels)
        ticket = None
        if self.cache is not None:
            (found,), ticket = self.cache.lookup([f"{path}/{key}"])
            if found is not MISSING:
                return _cached_item(labels, key, found)
        if self.search_module is None:
            yield from self.plan_setup()
        (reply,) = yield [("HMGET", item_key(self.namespace, path, key), *_GET_FIELDS)]
        item, read = self._read_item(labels, path, key, reply, ticket)
        if refresh_ttl and read is not None:
            yield self._touch_round([read])
        return item

    def _check_list(self, op: ListNamespacesOp) -> None:
        for condition in op.match_conditions or ():
            if condition.match_type not in ("prefix", "suffix"):
                raise ValidationError(f"unknown match_type {condition.match_type!r}")
            check_labels(condition.path)
        if op.max_depth is not None:
            _check_count(op.max_depth, "max_depth", 0)
        _check_count(op.limit, "limit", 0)
        _check_count(op.offset, "offset", 0)

    # ------------------------------------------------------------ puts

    def _prepare_put(self, op: PutOp) -> _Put:
        labels = check_labels(op.namespace)
        if not labels:
            raise InvalidNamespace("Namespace cannot be empty.")
        key = _check_key(op.key)
        path = encode_path(labels)
        if op.value is None:
            return _Put(labels, path, key, None, -1, "", "")
        if not isinstance(op.value, Mapping):
            raise ValidationError(f"an item value must be a dict, not {type(op.value).__name__}")
        value = dict(op.value)
        check_json(value, "value")
        packed = pack(
            value,
            compress_threshold=self.settings.compress_threshold,
            max_size=self.settings.max_message_bytes,
        )
        put = _Put(
            labels, path, key, packed, ttl_ms(op.ttl), q.ancestry(labels), q.value_tokens(value)
        )
        if self.index is not None and op.index is not False:
            if op.index is None:
                paths = self.index.fields
            elif isinstance(op.index, list) and all(isinstance(p, str) for p in op.index):
                paths = tuple((p, p if p == "$" else tokenize_path(p)) for p in op.index)
            else:
                raise ValidationError("index must be False, None or a list of str paths")
            for _, tokens in paths:
                put.texts += get_text_at_path(value, tokens)
        return put

    def _attach_vectors(self, puts: list[_Put], vectors: Sequence[Sequence[float]]) -> None:
        assert self.index is not None
        spec = self.index.spec
        total = sum(len(p.texts) for p in puts)
        if len(vectors) != total:
            raise ValidationError(f"the embedder returned {len(vectors)} vectors for {total}")
        dtype = np.float16 if spec.dtype == "float16" else np.float32
        it = iter(vectors)
        for put in puts:
            for _ in put.texts:
                array = np.asarray(next(it), dtype=np.float64)
                if array.shape != (spec.dims,) or not np.isfinite(array).all():
                    raise ValidationError(
                        f"the embedder returned a vector of shape {array.shape}; "
                        f"index['dims'] is {spec.dims}"
                    )
                put.vectors.append(array.astype(dtype).tobytes())

    def _plan_puts(self, puts: list[_Put]) -> Plan[None]:
        for put in puts:
            put.keys_for = max(len(put.vectors), 0 if put.packed else self._vector_guess)
        pending = [puts[i : i + _PUT_CHUNK] for i in range(0, len(puts), _PUT_CHUNK)]
        for _ in range(_MAX_RETRIES):
            replies = yield [self._put_call(chunk) for chunk in pending]
            retry = []
            for chunk, reply in zip(pending, replies, strict=True):
                if int(reply[0]) == 0:
                    continue
                for n in range(1, len(reply), 2):  # {-1, item number, vectors held, ...}
                    chunk[int(reply[n]) - 1].keys_for = int(reply[n + 1])
                retry.append(chunk)
            if not retry:
                return
            pending = retry
        raise BackendError(
            "items kept changing their vectors while being written; try again",
            namespace=self.namespace,
        )

    def _put_call(self, chunk: list[_Put]) -> ScriptStep:
        ns = self.namespace
        keys: list[str] = [self.keys.registry, self.keys.meta]
        args: list[Arg] = [self._channel]
        for p in chunk:
            keys += [item_key(ns, p.path, p.key), keys_zset(ns, p.path)]
            keys += [vector_key(ns, p.path, p.key, n) for n in range(p.keys_for)]
            args += [p.path, p.key, p.ttl_ms, p.keys_for, len(p.vectors), p.packed or b""]
            args += [p.anc, p.kv, *p.vectors]
        return ScriptStep(LGSTORE_PUT, keys, args)

    # ------------------------------------------------------------ reads

    def _plan_gets(
        self,
        gets: list[tuple[int, GetOp, tuple[str, ...]]],
        results: list[Result],
        touch: list[_Read],
    ) -> Plan[None]:
        ns = self.namespace
        paths = [encode_path(labels) for _, _, labels in gets]
        ticket = None
        if self.cache is None:
            found: list[Found] = [MISSING] * len(gets)
        else:
            refs = [f"{path}/{op.key}" for (_, op, _), path in zip(gets, paths, strict=True)]
            found, ticket = self.cache.lookup(refs)
        misses = []
        for (i, op, labels), path, entry in zip(gets, paths, found, strict=True):
            if entry is MISSING:
                misses.append((i, op, labels, path))
            else:
                results[i] = _cached_item(labels, op.key, entry)
        if not misses:
            return
        replies = yield [
            ("HMGET", item_key(ns, path, op.key), *_GET_FIELDS) for _, op, _, path in misses
        ]
        for (i, op, labels, path), reply in zip(misses, replies, strict=True):
            results[i], read = self._read_item(labels, path, op.key, reply, ticket)
            if op.refresh_ttl and read is not None:
                touch.append(read)

    def _read_item(
        self,
        labels: tuple[str, ...],
        path: str,
        key: str,
        reply: Sequence[Any],
        ticket: Ticket | None,
    ) -> tuple[Item | None, _Read | None]:
        """The item an ``HMGET`` of ``_GET_FIELDS`` found (None: absent), and the TTL touch it
        owes when read with ``refresh_ttl`` (None: it has no TTL). With a ticket, the cache
        keeps what was found, unless the item has a TTL."""
        if reply[0] is None:
            if ticket is not None:
                assert self.cache is not None
                self.cache.fill(ticket, f"{path}/{key}", None)
            return None, None
        fields = dict(zip(_GET_FIELDS, reply, strict=True))
        value, created, updated = self._decode(labels, key, fields)
        item = Item(value=value, key=key, namespace=labels, created_at=created, updated_at=updated)
        if int(fields["ttl"] or 0) > 0:
            return item, _Read(path, key, fields["seq"], int(fields["nv"] or 0))
        if ticket is not None:
            assert self.cache is not None
            self.cache.fill(ticket, f"{path}/{key}", Cached(bytes(fields["val"]), created, updated))
        return item, None

    def _decode(
        self, labels: tuple[str, ...], key: str, fields: Mapping[str, Any]
    ) -> tuple[dict[str, Any], datetime, datetime]:
        """An item's value and times from its hash fields."""
        try:
            value = unpack(fields["val"])
            created = _EPOCH + timedelta(microseconds=int(fields["created"]))
            updated = _EPOCH + timedelta(microseconds=int(fields["updated"]))
        except (RmemError, KeyError, TypeError, ValueError) as exc:
            where = item_key(self.namespace, encode_path(labels), key)
            raise CorruptDataError(
                f"store item {where} cannot be decoded: {exc}", namespace=self.namespace, key=where
            ) from None
        if not isinstance(value, dict):
            raise CorruptDataError(f"store item {labels}/{key} holds no dict", key=key)
        return value, created, updated

    def _touch_round(self, reads: list[_Read]) -> Round:
        ns = self.namespace
        steps: Round = []
        for start in range(0, len(reads), _PUT_CHUNK):
            keys = [self.keys.registry]
            args: list[Arg] = []
            for r in reads[start : start + _PUT_CHUNK]:
                keys += [item_key(ns, r.path, r.key), keys_zset(ns, r.path)]
                keys += [vector_key(ns, r.path, r.key, n) for n in range(r.nv)]
                args += [r.path, r.key, r.seq, r.nv]
            steps.append(ScriptStep(LGSTORE_TOUCH, keys, args))
        return steps

    # ------------------------------------------------------------ search

    def _plan_search(
        self,
        op: SearchOp,
        prefix: tuple[str, ...],
        flt: dict[str, Any] | None,
        touch: list[_Read],
    ) -> Plan[list[SearchItem]]:
        if not self.search_module:
            raise BackendError(
                "store search needs the Redis query engine (Redis 8, or Redis Stack); "
                "the Redis behind this store has no FT commands",
                namespace=self.namespace,
            )
        if op.limit == 0:
            return []
        if op.query and self.index is not None:
            (qvec,) = yield Embed([op.query], query=True)
            found = yield from self._plan_knn(prefix, flt, qvec, op.offset + op.limit)
            page = found[op.offset : op.offset + op.limit]
            if len(page) < op.limit:  # InMemoryStore fills up with items that have no vector
                extra = yield from self._plan_listing(prefix, flt, 0, op.limit - len(page), True)
                page += extra
        else:
            page = yield from self._plan_listing(prefix, flt, op.offset, op.limit, False)
        if op.refresh_ttl:
            touch += [r for item, r in page if r is not None]
        return [item for item, _ in page]

    def _plan_listing(
        self,
        prefix: tuple[str, ...],
        flt: dict[str, Any] | None,
        offset: int,
        limit: int,
        unembedded: bool,
    ) -> Plan[list[tuple[SearchItem, _Read | None]]]:
        expr = q.expression(prefix, q.filter_tokens(flt), now_ms(), unembedded=unembedded)
        if not flt:  # nothing left for Python to check: Redis pages exactly
            (reply,) = yield [q.list_command(self.keys, expr, offset, limit)]
            _, hits = parse_reply(reply)
            return [self._hit(h.fields) for h in hits if b"val" in h.fields]
        # Redis narrows the candidates by the filter's equalities (value tokens); Python checks
        # the whole filter. The first page is as long as the answer: when every candidate on
        # it passes, as usual for equality filters, one round trip gives the exact page.
        wanted = offset + limit
        found: list[tuple[SearchItem, _Read | None]] = []
        start, page = 0, wanted
        while True:
            (reply,) = yield [q.list_command(self.keys, expr, start, page)]
            _, hits = parse_reply(reply)
            for hit in hits:
                if b"val" in hit.fields:
                    item = self._hit(hit.fields)
                    if matches(item[0].value, flt):
                        found.append(item)
            if len(found) >= wanted or len(hits) < page:
                return found[offset:wanted]
            start += page
            page = min(4 * page, _MAX_PAGE)

    def _plan_knn(
        self,
        prefix: tuple[str, ...],
        flt: dict[str, Any] | None,
        query_vector: Sequence[float],
        needed: int,
    ) -> Plan[list[tuple[SearchItem, _Read | None]]]:
        assert self.index is not None
        spec = self.index.spec
        dtype = np.float16 if spec.dtype == "float16" else np.float32
        vec = np.asarray(query_vector, dtype=dtype).tobytes()
        expr = q.expression(prefix, q.filter_tokens(flt), now_ms())
        # An item has about one vector per indexed field: k vectors usually name enough items.
        k = needed * max(1, self._vector_guess)
        loaded: dict[str, tuple[SearchItem, _Read | None] | None] = {}
        while True:
            command = q.knn_command(self.keys, spec, vec, k, expr, self.settings.hnsw_ef_runtime)
            (reply,) = yield [command]
            _, hits = parse_reply(reply)
            best: dict[str, float] = {}  # item key -> its nearest vector (hits come nearest first)
            for hit in hits:
                owner = hit.fields.get(b"item")
                if owner is not None:
                    best.setdefault(text_of(owner), float(hit.fields[q.DISTANCE.encode()]))
            order = list(best.items())
            ranked: list[tuple[SearchItem, _Read | None]] = []
            at = 0
            while at < len(order) and len(ranked) < needed:
                # Load only as many items as are still needed, nearest first.
                chunk = order[at : at + needed - len(ranked)]
                at += len(chunk)
                yield from self._plan_load([ikey for ikey, _ in chunk], prefix, loaded)
                for ikey, distance in chunk:
                    hit_ = loaded[ikey]
                    if hit_ is None or not matches(hit_[0].value, flt):
                        continue
                    hit_[0].score = spec.score(distance)
                    ranked.append(hit_)
            if len(ranked) >= needed or len(hits) < k:
                return ranked
            k *= 4

    def _plan_load(
        self,
        ikeys: list[str],
        prefix: tuple[str, ...],
        loaded: dict[str, tuple[SearchItem, _Read | None] | None],
    ) -> Plan[None]:
        """Read the items behind vector hits (None: gone, or outside ``prefix``)."""
        missing = [ikey for ikey in ikeys if ikey not in loaded]
        if not missing:
            return
        fields = ("ns", "key", *_GET_FIELDS)
        replies = yield [("HMGET", ikey, *fields) for ikey in missing]
        for ikey, reply in zip(missing, replies, strict=True):
            if reply[2] is None:  # expired or deleted since the search
                loaded[ikey] = None
                continue
            hit = self._hit({f.encode(): v for f, v in zip(fields, reply, strict=True)})
            loaded[ikey] = hit if hit[0].namespace[: len(prefix)] == prefix else None

    def _hit(
        self, fields: Mapping[bytes, Any], score: float | None = None
    ) -> tuple[SearchItem, _Read | None]:
        labels = decode_path(text_of(fields[b"ns"]))
        key = text_of(fields[b"key"])
        decoded = {f: fields.get(f.encode()) for f in _GET_FIELDS}
        value, created, updated = self._decode(labels, key, decoded)
        item = SearchItem(labels, key, value, created, updated, score)
        read = None
        if int(decoded["ttl"] or 0) > 0:
            seq = bytes(decoded["seq"] or b"")
            read = _Read(encode_path(labels), key, seq, int(decoded["nv"] or 0))
        return item, read


def matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether an item value passes a SearchOp filter (see :func:`_langgraph_query.matches`)."""
    return q.matches(value, flt)


def _cached_item(labels: tuple[str, ...], key: str, entry: Cached | None) -> Item | None:
    # A new value dict for every hit: callers may change what they are given.
    if entry is None:
        return None
    return Item(
        value=unpack(entry.packed),
        key=key,
        namespace=labels,
        created_at=entry.created,
        updated_at=entry.updated,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def _list_namespaces(namespaces: list[tuple[str, ...]], op: ListNamespacesOp) -> list[Any]:
    found = [ns for ns in namespaces if all(_does_match(c, ns) for c in op.match_conditions or ())]
    if op.max_depth is not None:
        found = list({ns[: op.max_depth] for ns in found})
    found.sort()
    return found[op.offset : op.offset + op.limit]


def _does_match(condition: MatchCondition, ns: tuple[str, ...]) -> bool:
    path = (condition.path,) if isinstance(condition.path, str) else tuple(condition.path)
    if len(ns) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(ns, path, strict=False)
    else:
        pairs = zip(reversed(ns), reversed(path), strict=False)
    return all(p == "*" or label == p for label, p in pairs)
