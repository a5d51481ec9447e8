"""rmem.integrations.langgraph: the LangGraph store, against the test run's real Redis.

LangGraph's own store suites run too (tests/framework/langgraph); these tests cover what
they do not: namespace encoding, rejection before any write, the filter operators against
LangGraph's InMemoryStore as an oracle, TTL refresh and expiry observed in Redis, vector
bookkeeping, setup and errors, and the benchmark script. Behavioural tests run on both
``RmemStore`` and ``AsyncRmemStore`` (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rmem
from rmem.embedders import HashEmbedder

try:
    from langgraph.store.base import (
        GetOp,
        InvalidNamespaceError,
        ListNamespacesOp,
        MatchCondition,
        PutOp,
        SearchOp,
    )
    from langgraph.store.memory import InMemoryStore

    from rmem._keys import (
        decode_path,
        encode_path,
        item_key,
        store_keys,
    )
    from rmem.integrations.langgraph import AsyncRmemStore, InvalidNamespace, RmemStore
except ImportError:  # without the extra only test_import_without_the_extra runs
    HAVE_LANGGRAPH = False
else:
    HAVE_LANGGRAPH = True

REPO_ROOT = Path(__file__).resolve().parents[1]
needs_langgraph = pytest.mark.skipif(not HAVE_LANGGRAPH, reason="needs rmem[langgraph]")
DIMS = 32
ASYNC_NAMES = {"put", "get", "search", "delete", "list_namespaces", "batch"}


def embed(texts: Sequence[str]) -> list[list[float]]:
    vectors: list[list[float]] = HashEmbedder(DIMS).embed(list(texts))
    return vectors


class Driven:
    """One API over both stores: the async one's coroutines run to completion on a loop."""

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.store = store
        self.loop = loop

    def __getattr__(self, name: str) -> Any:
        if self.loop is None:
            return getattr(self.store, name)
        method = getattr(self.store, f"a{name}" if name in ASYNC_NAMES else name)
        if not callable(method):
            return method
        loop = self.loop

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return loop.run_until_complete(result) if inspect.isawaitable(result) else result

        return call


class Stores:
    """Makes stores of one flavour on the test Redis and drops what they wrote afterwards."""

    def __init__(self, flavour: str, url: str) -> None:
        self.flavour = flavour
        self.url = url
        self.loop = asyncio.new_event_loop() if flavour == "async" else None
        self.namespaces: list[str] = []
        self._closers: list[Callable[[], Any]] = []

    def make(self, namespace: str | None = None, **kwargs: Any) -> Any:
        ns = namespace or f"lg-{uuid.uuid4().hex[:12]}"
        self.namespaces.append(ns)
        if self.loop is None:
            client = rmem.Client.from_url(self.url, namespace=ns)
            self._closers.append(client.close)
            return Driven(RmemStore(client, **kwargs), None)
        aclient = rmem.AsyncClient.from_url(self.url, namespace=ns)

        async def build() -> AsyncRmemStore:
            return AsyncRmemStore(aclient, **kwargs)

        store = self.loop.run_until_complete(build())
        loop = self.loop
        self._closers.append(lambda: loop.run_until_complete(_aclose(store, aclient)))
        return Driven(store, self.loop)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        if self.loop is not None:
            self.loop.close()
        with rmem.Client.from_url(self.url) as client:
            for ns in self.namespaces:
                for index in (store_keys(ns).item_index, store_keys(ns).vector_index):
                    with contextlib.suppress(rmem.RmemError):  # not every store has both
                        client._backend.call("FT.DROPINDEX", index, "DD")


async def _aclose(store: Any, client: rmem.AsyncClient) -> None:
    await store._stop_batching()
    await client.aclose()


@pytest.fixture(params=["sync", "async"])
def stores(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Stores]:
    if not HAVE_LANGGRAPH:
        pytest.skip("needs rmem[langgraph]")
    made = Stores(request.param, redis_url)
    yield made
    made.close()


@pytest.fixture
def store(stores: Stores) -> Any:
    return stores.make()


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def keys_of(raw: Any, namespace: str, kind: str) -> list[bytes]:
    return sorted(raw.scan_iter(match=f"rmem:{{{namespace}}}:lg:{kind}:*", count=1000))


# ---------------------------------------------------------------- the extra


def test_import_without_the_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "import rmem\n"
        "try:\n"
        "    import rmem.integrations.langgraph\n"
        "except ImportError as exc:\n"
        "    assert isinstance(exc, rmem.RmemError), type(exc)\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without langgraph')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'rmem[langgraph]'" in done.stdout


@needs_langgraph
def test_public_names_are_documented() -> None:
    import rmem.integrations.langgraph as module

    assert module.__all__ == sorted(module.__all__)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and callable(member) and not inspect.getdoc(member):
                missing.append(f"{name}.{attr}")
    assert not missing
    assert issubclass(module.MissingExtraError, ImportError)
    assert issubclass(module.MissingExtraError, rmem.RmemError)


# ---------------------------------------------------------------- items and namespaces


@needs_langgraph
def test_put_get_update_delete(store: Any) -> None:
    ns = ("users", "alice")
    value = {"text": "Ünïcode ✓", "nested": {"a": [1, 2.5, None, True]}, "empty": {}}
    store.put(ns, "prefs", value)
    first = store.get(ns, "prefs")
    assert first.value == value and first.namespace == ns and first.key == "prefs"
    store.put(ns, "prefs", {"text": "new"})
    second = store.get(ns, "prefs")
    assert second.value == {"text": "new"}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert store.get(("users",), "prefs") is None
    store.delete(ns, "prefs")
    assert store.get(ns, "prefs") is None
    assert store.list_namespaces() == []


@needs_langgraph
def test_namespaces_and_keys_never_collide(store: Any) -> None:
    namespaces = [
        ("a", "b"),
        ("a%2Eb",),
        ("a/b",),
        ("a", "b/c"),
        ("a%", "b"),
        ("a", "b "),
        ("a", "b\n"),
        ("ä", "*"),
    ]
    for n, ns in enumerate(namespaces):
        store.put(ns, "k/1", {"n": n})
        store.put(ns, "k", {"n": -n})
    for n, ns in enumerate(namespaces):
        assert store.get(ns, "k/1").value == {"n": n}
        assert store.get(ns, "k").value == {"n": -n}
    assert sorted(store.list_namespaces(limit=100)) == sorted(namespaces)
    found = {(item.namespace, item.key) for item in store.search(("a",), limit=100)}
    assert found == {(ns, k) for ns in namespaces if ns[0] == "a" for k in ("k", "k/1")}
    assert {i.namespace for i in store.search(("a", "b"), limit=100)} == {("a", "b")}


@needs_langgraph
@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_namespace_encoding_is_injective(labels: list[str]) -> None:
    path = encode_path(tuple(labels))
    assert decode_path(path) == tuple(labels)
    assert "/" not in path
    assert path.count(".") == len(labels) - 1


BAD_NAMESPACES = [("a.b",), ("a", ""), ("a", 1), ("a\x00",)]


@needs_langgraph
@pytest.mark.parametrize("bad", BAD_NAMESPACES, ids=repr)
def test_bad_labels_are_refused_before_any_write(store: Any, bad: Any) -> None:
    store.put(("a", "b"), "k", {"original": True})
    for op in (
        PutOp(bad, "k", {"v": 1}),
        PutOp(bad, "k", None),
        GetOp(bad, "k"),
        SearchOp(bad),
        ListNamespacesOp((MatchCondition("prefix", bad),)),
        ListNamespacesOp((MatchCondition("suffix", bad),)),
    ):
        with pytest.raises(InvalidNamespace) as caught:
            store.batch([PutOp(("valid",), "k", {"v": 1}), PutOp(("a", "b"), "k", None), op])
        assert isinstance(caught.value, rmem.ValidationError), op
        assert isinstance(caught.value, InvalidNamespaceError), op
        assert store.get(("valid",), "k") is None, op
        assert store.get(("a", "b"), "k").value == {"original": True}, op


@needs_langgraph
def test_put_refuses_reserved_and_empty_namespaces_but_batch_allows_langgraph(
    store: Any,
) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "x"), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.put((), "k", {"v": 1})
    with pytest.raises(InvalidNamespace):
        store.batch([PutOp((), "k", {"v": 1})])
    store.batch([PutOp(("langgraph", "x"), "k", {"v": 1})])  # LangGraph's own writes
    assert store.get(("langgraph", "x"), "k").value == {"v": 1}


BAD_OPS: list[tuple[Callable[[], Any], str]] = [
    (lambda: PutOp(("a",), "k", ["not", "a", "dict"]), "dict"),  # type: ignore[arg-type]
    (lambda: PutOp(("a",), "k", {"b": b"bytes"}), "cannot be stored"),
    (lambda: PutOp(("a",), "k", {"v": 1}, ttl=-1), "ttl"),
    (lambda: PutOp(("a",), 7, {"v": 1}), "key"),  # type: ignore[arg-type]
    (lambda: SearchOp(("a",), limit=-1), "limit"),
    (lambda: SearchOp(("a",), filter={"v": {"$in": [1]}}), r"\$in"),
    (lambda: SearchOp(("a",), filter=["v"]), "filter"),  # type: ignore[arg-type]
    (lambda: "not an op", "unknown"),
]


@needs_langgraph
@pytest.mark.parametrize(("make_op", "message"), BAD_OPS)
def test_bad_ops_raise_validation_errors_and_write_nothing(
    store: Any, make_op: Callable[[], Any], message: str
) -> None:
    with pytest.raises(rmem.ValidationError, match=message):
        store.batch([PutOp(("a",), "first", {"v": 0}), make_op()])
    assert store.get(("a",), "first") is None


# ---------------------------------------------------------------- search and filters

ITEMS = [
    {"color": "red", "score": 4.5, "n": 1, "ok": True, "tags": ["x", "y"], "m": {"k": 1}},
    {"color": "red", "score": 3.0, "n": 2, "ok": False, "tags": ["x"], "m": {"k": 2}},
    {"color": "green", "score": 4.0, "n": 3, "ok": True, "tags": [], "m": {"k": 1, "j": 0}},
    {"color": "blue", "score": 3.5, "n": 1.0, "ok": 1, "tags": ["y"], "m": {}},
    {"color": "Blue", "score": 5, "n": 0, "ok": 0, "tags": ["x", "y"], "m": {"k": "1"}},
]
FILTERS: list[dict[str, Any]] = [
    {"color": "red"},
    {"color": {"$eq": "blue"}},
    {"color": {"$ne": "red"}},
    {"score": {"$gt": 3.5}},
    {"score": {"$gte": 3.5}},
    {"score": {"$lt": 4}},
    {"score": {"$lte": 4.0, "$gt": 3}},
    {"score": {"$gte": 3.0}, "color": "red"},
    {"n": 1},
    {"n": True},
    {"ok": True},
    {"ok": 0},
    {"tags": ["x", "y"]},
    {"m": {"k": 1}},
    {"m": {"k": "1"}},
    {"color": "purple"},
]


@needs_langgraph
def test_filters_agree_with_inmemorystore(store: Any) -> None:
    oracle = InMemoryStore()
    for n, value in enumerate(ITEMS):
        store.put(("docs", f"d{n % 2}"), f"k{n}", value)
        oracle.put(("docs", f"d{n % 2}"), f"k{n}", value)
    for flt in FILTERS:
        got = sorted(i.key for i in store.search(("docs",), filter=flt, limit=100))
        want = sorted(i.key for i in oracle.search(("docs",), filter=flt, limit=100))
        assert got == want, flt


@needs_langgraph
def test_filter_edge_cases(store: Any) -> None:
    store.put(("d",), "no-score", {"color": "red"})
    store.put(("d",), "str-score", {"score": "high"})
    store.put(("d",), "wide", {f"f{i}": i for i in range(100)})  # too many fields to tokenise
    assert [i.key for i in store.search(("d",), filter={"score": {"$gt": 1}})] == []
    assert [i.key for i in store.search(("d",), filter={"f42": 42})] == ["wide"]
    assert [i.key for i in store.search(("d",), filter={"f42": 42.0})] == ["wide"]
    assert [i.key for i in store.search(("d",), filter={"f42": 41})] == []
    assert {i.key for i in store.search(("d",), filter={"color": None})} == {"str-score", "wide"}
    store.put(("s",), "r", {"c": "red"})
    store.put(("s",), "B", {"c": "Blue"})
    store.put(("s",), "g", {"c": "green"})
    assert {i.key for i in store.search(("s",), filter={"c": {"$gt": "blue"}})} == {"r", "g"}


@needs_langgraph
def test_filtered_pages_are_full_and_consistent(store: Any) -> None:
    for n in range(30):
        store.put(("p",), f"k{n:02d}", {"third": n % 3 == 0, "n": n})
    full = [i.key for i in store.search(("p",), filter={"n": {"$lt": 100}}, limit=100)]
    assert len(full) == 30
    assert full == [f"k{n:02d}" for n in reversed(range(30))]  # newest write first
    thirds = [i.key for i in store.search(("p",), filter={"third": True}, limit=100)]
    assert len(thirds) == 10
    pages = [
        i.key
        for offset in range(0, 10, 4)
        for i in store.search(("p",), filter={"third": True}, limit=4, offset=offset)
    ]
    assert pages == thirds
    ranged = store.search(("p",), filter={"n": {"$gte": 10, "$lt": 20}}, limit=3, offset=8)
    assert [i.key for i in ranged] == ["k11", "k10"]


LISTINGS: list[dict[str, Any]] = [
    {},
    {"prefix": ("a",)},
    {"prefix": ("a", "*")},
    {"prefix": ("a", "*", "f")},
    {"suffix": ("f",)},
    {"suffix": ("*", "f")},
    {"prefix": ("a",), "suffix": ("f",)},
    {"max_depth": 1},
    {"max_depth": 2, "prefix": ("a",)},
    {"limit": 2, "offset": 1},
    {"prefix": ("nope",)},
]


@needs_langgraph
def test_list_namespaces_agrees_with_inmemorystore(store: Any) -> None:
    oracle = InMemoryStore()
    namespaces = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "f"), ("a", "c", "f")]
    namespaces += [("b", "a", "f"), ("users", "123"), ("users", "456", "settings")]
    for ns in namespaces:
        store.put(ns, "k", {"v": 1})
        oracle.put(ns, "k", {"v": 1})
    for kwargs in LISTINGS:
        assert store.list_namespaces(**kwargs) == oracle.list_namespaces(**kwargs), kwargs


# ---------------------------------------------------------------- semantic search


@needs_langgraph
def test_semantic_search_ranks_pools_and_fills(stores: Stores, raw: Any) -> None:
    store = stores.make(index={"dims": DIMS, "embed": embed, "fields": ["title", "body"]})
    store.put(("docs",), "tea", {"title": "green tea", "body": "a drink from leaves"})
    store.put(("docs",), "rust", {"title": "rust language", "body": "green threads"})
    store.put(("docs",), "plain", {"title": "green tea"}, index=False)
    hits = store.search(("docs",), query="green tea", limit=3)
    assert [h.key for h in hits] == ["tea", "rust", "plain"]
    assert hits[0].score > hits[1].score and hits[2].score is None  # unembedded fill last
    # max pooling: a field matching exactly scores as one vector, not as an average
    only = store.search(("docs",), query="a drink from leaves", limit=1)[0]
    assert only.key == "tea" and only.score == pytest.approx(1.0, abs=1e-3)
    ns = stores.namespaces[-1]
    assert len(keys_of(raw, ns, "v")) == 4
    store.put(("docs",), "tea", {"title": "tea only"})  # one vector now
    store.delete(("docs",), "rust")
    assert len(keys_of(raw, ns, "v")) == 1
    assert [h.key for h in store.search(("docs",), query="green threads", limit=1)] != ["rust"]


@needs_langgraph
def test_a_store_without_index_still_drops_old_vectors(stores: Stores, raw: Any) -> None:
    indexed = stores.make(index={"dims": DIMS, "embed": embed, "fields": ["a", "b", "c"]})
    ns = stores.namespaces[-1]
    indexed.put(("x",), "k", {"a": "one", "b": "two", "c": "three"})
    indexed.put(("x",), "gone", {"a": "one", "b": "two", "c": "three"})
    assert len(keys_of(raw, ns, "v")) == 6
    plain = stores.make(namespace=ns)  # same store, opened without index=
    plain.put(("x",), "k", {"a": "new"})  # must find and delete the 3 vectors it did not embed
    plain.delete(("x",), "gone")
    assert keys_of(raw, ns, "v") == []
    assert [h.key for h in indexed.search(("x",), query="one two three")] == ["k"]


@needs_langgraph
def test_wrong_embedding_size_writes_nothing(stores: Stores) -> None:
    store = stores.make(index={"dims": DIMS + 1, "embed": embed})
    with pytest.raises(rmem.ValidationError, match="dims"):
        store.batch([PutOp(("a",), "first", {"v": "x"}, index=False), PutOp(("a",), "k", {"v": 1})])
    assert store.get(("a",), "first") is None


@needs_langgraph
def test_vector_index_of_another_shape_is_refused(stores: Stores) -> None:
    first = stores.make(index={"dims": DIMS, "embed": embed})
    first.setup()
    other = stores.make(
        namespace=stores.namespaces[-1], index={"dims": 16, "embed": embed, "fields": ["t"]}
    )
    with pytest.raises(rmem.SchemaMismatchError, match="dim"):
        other.setup()


# ---------------------------------------------------------------- TTL


@needs_langgraph
def test_ttl_refresh_on_read_restarts_every_key(stores: Stores, raw: Any) -> None:
    store = stores.make(index={"dims": DIMS, "embed": embed, "fields": ["t"]})
    ns = stores.namespaces[-1]
    store.put(("t",), "k", {"t": "hello"}, ttl=1.0)  # one minute
    ikey = item_key(ns, "t", "k")
    vkey = keys_of(raw, ns, "v")[0]
    time.sleep(0.25)
    assert store.get(("t",), "k", refresh_ttl=False) is not None
    assert 59_000 < raw.pttl(ikey) <= 59_800
    store.get(("t",), "k", refresh_ttl=True)
    for key in (ikey, vkey, f"rmem:{{{ns}}}:lg:k:t"):
        assert raw.pttl(key) > 59_800
    time.sleep(0.25)
    store.search(("t",), query="hello", refresh_ttl=True)
    assert raw.pttl(vkey) > 59_800 and raw.pttl(ikey) > 59_800
    store.put(("t",), "k", {"t": "kept"}, ttl=None)
    assert raw.pttl(ikey) == -1 and raw.pttl(vkey) == -1


@needs_langgraph
def test_expired_items_leave_every_read(stores: Stores) -> None:
    store = stores.make(ttl={"default_ttl": 0.01, "refresh_on_read": True})  # 600 ms
    for key in ("a", "b", "c"):
        store.put(("page",), key, {"k": key}, ttl=None)
    store.put(("page",), "expired", {"k": "x"})  # the default TTL, newest write
    store.put(("gone",), "e", {"k": "x"})
    assert [i.key for i in store.search(("page",), limit=2)] == ["expired", "c"]
    time.sleep(0.8)
    assert store.get(("page",), "expired") is None
    assert store.get(("gone",), "e", refresh_ttl=True) is None
    assert [i.key for i in store.search(("page",), limit=2)] == ["c", "b"]
    assert [i.key for i in store.search(("page",), limit=2, offset=2)] == ["a"]
    assert [i.key for i in store.search(("page",), filter={"k": "x"})] == []
    assert store.list_namespaces() == [("page",)]
    assert store.sweep_ttl() == 1  # the registry entry of ("gone",) is dropped


@needs_langgraph
def test_refresh_on_read_false_in_the_config(stores: Stores, raw: Any) -> None:
    store = stores.make(ttl={"default_ttl": 1.0, "refresh_on_read": False})
    ns = stores.namespaces[-1]
    store.put(("t",), "k", {"v": 1})
    time.sleep(0.2)
    store.get(("t",), "k")
    assert raw.pttl(item_key(ns, "t", "k")) <= 59_850


# ---------------------------------------------------------------- setup, errors, sharing


@needs_langgraph
def test_from_conn_string_both_apis(redis_url: str) -> None:
    ns = f"lg-{uuid.uuid4().hex[:12]}"
    with RmemStore.from_conn_string(redis_url, namespace=ns) as store:
        store.setup()
        store.setup()
        store.put(("a",), "k", {"v": 1})

    async def main() -> Any:
        async with AsyncRmemStore.from_conn_string(redis_url, namespace=ns) as astore:
            await astore.setup()
            return await astore.aget(("a",), "k")

    assert asyncio.run(main()).value == {"v": 1}
    with rmem.Client.from_url(redis_url) as client:
        client._backend.call("FT.DROPINDEX", store_keys(ns).item_index, "DD")


@needs_langgraph
def test_a_store_needs_an_rmem_client(redis_url: str) -> None:
    with pytest.raises(rmem.ValidationError, match="from_conn_string"):
        RmemStore(redis_url)  # type: ignore[arg-type]
    bad_index: Any = {"dims": 0, "embed": embed}
    with (
        pytest.raises(rmem.ValidationError, match="dims"),
        RmemStore.from_conn_string(redis_url, index=bad_index),
    ):
        pass


@needs_langgraph
def test_async_store_refuses_sync_calls_on_its_own_loop(redis_url: str) -> None:
    ns = f"lg-{uuid.uuid4().hex[:12]}"

    async def main() -> None:
        async with AsyncRmemStore.from_conn_string(redis_url, namespace=ns) as astore:
            with pytest.raises(asyncio.InvalidStateError):
                astore.get(("a",), "k")
            assert await asyncio.to_thread(astore.get, ("a",), "missing") is None

    asyncio.run(main())
    with rmem.Client.from_url(redis_url) as client:
        client._backend.call("FT.DROPINDEX", store_keys(ns).item_index, "DD")


@needs_langgraph
def test_without_the_query_engine_search_fails_clearly(plain_redis_url: str) -> None:
    with RmemStore.from_conn_string(plain_redis_url, namespace="lg-plain") as store:
        store.setup()
        store.put(("a", "b"), "k", {"v": 1})
        assert store.get(("a", "b"), "k").value == {"v": 1}
        assert store.list_namespaces() == [("a", "b")]
        with pytest.raises(rmem.BackendError, match="query engine"):
            store.search(("a",))
        store.delete(("a", "b"), "k")


@needs_langgraph
def test_corrupt_item_names_its_key(store: Any, stores: Stores, raw: Any) -> None:
    store.put(("a",), "k", {"v": 1})
    key = item_key(stores.namespaces[-1], "a", "k")
    raw.hset(key, "val", b"\x07garbage")
    with pytest.raises(rmem.CorruptDataError) as caught:
        store.get(("a",), "k")
    assert caught.value.key == key


@needs_langgraph
def test_writers_on_other_clients_and_threads_share_one_store(stores: Stores) -> None:
    store = stores.make()
    other = stores.make(namespace=stores.namespaces[-1])
    if stores.flavour == "sync":

        def write(t: int) -> None:
            for n in range(25):
                store.put(("shared", f"t{t}"), f"k{n}", {"t": t, "n": n})

        threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:

        async def write_all() -> None:
            await asyncio.gather(
                *(
                    store.store.aput(("shared", f"t{t}"), f"k{n}", {"t": t, "n": n})
                    for t in range(4)
                    for n in range(25)
                )
            )

        assert stores.loop is not None
        stores.loop.run_until_complete(write_all())
    assert len(other.search(("shared",), limit=1000)) == 100
    assert len(other.list_namespaces(prefix=("shared",))) == 4


@needs_langgraph
def test_get_answers_as_a_batch_of_one_get(redis_url: str, namespace: str) -> None:
    """RmemStore.get skips the batch planning; what it returns and refuses must not change."""
    with RmemStore.from_conn_string(redis_url, namespace=namespace, ttl={"default_ttl": 5}) as s:
        s.put(("a", "b"), "k", {"v": [1, {"x": None}]})
        s.put(("a",), "k2", {"v": 2}, ttl=None)
        for ns, key in ((("a", "b"), "k"), (("a",), "k2"), (("a",), "k"), (("z",), "k")):
            for refresh in (None, True, False):
                got = s.get(ns, key, refresh_ttl=refresh)
                want = s.batch([GetOp(ns, key, refresh_ttl=refresh is not False)])[0]
                assert (got is None) == (want is None)
                if got is not None and want is not None:
                    assert got.dict() == want.dict()
        assert s.get(("a", "b"), 7) is None  # type: ignore[arg-type]  # str(key), as BaseStore
        assert s.get((), "k") is None  # as BaseStore.get and a batch: no such item
        for bad in (("a.b",), ("",), ("a", 3), ("a\x00",)):
            with pytest.raises(InvalidNamespaceError):
                s.get(bad, "k")  # type: ignore[arg-type]
            with pytest.raises(InvalidNamespaceError):
                s.batch([GetOp(bad, "k")])  # type: ignore[arg-type]


@needs_langgraph
def test_another_instance_sees_each_write_once_its_hint_arrives(stores: Stores) -> None:
    """A get may be answered by the reader's item cache, which another instance's write
    reaches with the sync hint its script publishes (milliseconds; tests/test_langgraph_cache.py
    covers the cache); searches and listings read Redis, so they see the write at once."""
    writer = stores.make()
    reader = stores.make(namespace=stores.namespaces[-1])
    for n in range(20):
        writer.put(("u", "a"), "k", {"n": n, "kind": "fact"})
        assert [i.value["n"] for i in reader.search(("u",), filter={"kind": "fact"})] == [n]
        _within(lambda n=n: _value(reader.get(("u", "a"), "k")) == {"n": n, "kind": "fact"})
    writer.delete(("u", "a"), "k")
    assert reader.search(("u",)) == []
    assert reader.list_namespaces() == []
    _within(lambda: reader.get(("u", "a"), "k") is None)


def _value(item: Any) -> Any:
    return None if item is None else item.value


def _within(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.002)


# ---------------------------------------------------------------- benchmark


@needs_langgraph
def test_benchmark_quick_run(redis_url: str, tmp_path: Path) -> None:
    pytest.importorskip("langgraph.store.redis", reason="needs langgraph-checkpoint-redis")
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_langgraph.py",
            "--quick",
            "--url",
            redis_url,
            "--items",
            "40",
            "--scale",
            "0.1",
            "--blocks",
            "2",
            "--markdown",
            str(report),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line[:2] == "| "]
    for op in ("put", "get", "search(filter)", "put + embed", "search(query)"):
        assert f"RmemStore.{op}" in rows and f"RedisStore.{op}" in rows
    text = report.read_text(encoding="utf-8")
    assert "<!-- bench_langgraph:start -->" in text and "<!-- bench_langgraph:end -->" in text
