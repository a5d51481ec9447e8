"""The LangGraph store's item cache (rmem.integrations._langgraph_cache), against real Redis.

A get of an item the store read before is answered from process memory, kept coherent by the
item hints ``lua/lgstore_put.lua`` publishes: these tests show that it is served without a
round trip, and that it never serves what another client, another process, or the store itself
changed since (within the wait a hint takes), nor anything read before a reconnect. Round
trips are counted by wrapping the client's backend (every call still goes to Redis).
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import rmem
from rmem._codec import pack
from rmem._keys import encode_path, item_key, sync_channel
from rmem._replica import _parse_item_hint
from tests.test_integration_langgraph import HAVE_LANGGRAPH, Driven, Stores

if HAVE_LANGGRAPH:
    from langgraph.store.base import GetOp, PutOp

    from rmem.integrations.langgraph import RmemStore

pytestmark = pytest.mark.skipif(not HAVE_LANGGRAPH, reason="needs rmem[langgraph]")
REPO_ROOT = Path(__file__).resolve().parents[1]
NS = ("users", "alice")


@pytest.fixture(params=["sync", "async"])
def stores(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Stores]:
    made = Stores(request.param, redis_url)
    yield made
    made.close()


def trips(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the round trips the store's client sends from now on (in a one-item list)."""
    backend = store.store.client._backend if hasattr(store, "store") else store.client._backend
    real = backend.pipeline
    count = [0]
    if inspect.iscoroutinefunction(real):

        async def counting_async(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(backend, "pipeline", counting_async)
    else:

        def counting(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(backend, "pipeline", counting)
    return count


def client_of(store: Any) -> Any:
    return store.store.client if hasattr(store, "store") else store.client


def warm(store: Any, namespace: tuple[str, ...], key: str, count: list[int]) -> Any:
    """Read an item until the store answers it from its cache; return what it answers."""
    assert client_of(store).wait_synced()
    deadline = time.monotonic() + 5
    while True:
        before = count[0]
        item = store.get(namespace, key)
        if count[0] == before:
            return item
        assert time.monotonic() < deadline, "the cache never served the item"
        time.sleep(0.005)


def sibling_of(stores: Stores, store: Any) -> Any:
    """Another store on the same client as ``store``."""
    if store.loop is None:
        return Driven(RmemStore(store.store.client), None)
    loop = store.loop

    async def build() -> Any:
        return type(store.store)(store.store.client)

    made = loop.run_until_complete(build())
    stores._closers.insert(0, lambda: loop.run_until_complete(made._stop_batching()))
    return Driven(made, loop)


def within(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait until ``condition`` holds; return how long it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "not seen in time"
        time.sleep(0.001)
    return time.monotonic() - start


def value(item: Any) -> Any:
    return None if item is None else item.value


# ---------------------------------------------------------------- served from memory


def test_a_reread_makes_no_round_trip(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    store = stores.make()
    store.put(NS, "prefs", {"theme": "dark"})
    count = trips(store, monkeypatch)
    first = warm(store, NS, "prefs", count)
    assert warm(store, NS, "missing", count) is None  # an absent item is kept too
    before = count[0]
    for _ in range(5):
        assert value(store.get(NS, "prefs")) == {"theme": "dark"}
        got = store.batch([GetOp(NS, "prefs"), GetOp(NS, "missing")])
        assert value(got[0]) == {"theme": "dark"} and got[1] is None
    assert store.get(NS, "missing") is None
    assert count[0] == before
    assert first.dict() == store.get(NS, "prefs").dict()


def test_a_caller_changing_a_returned_item_changes_nothing_kept(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores.make()
    store.put(NS, "prefs", {"theme": "dark", "tags": ["a"], "deep": {"x": 1}})
    count = trips(store, monkeypatch)
    item = warm(store, NS, "prefs", count)
    item.value["theme"] = "light"
    item.value["tags"].append("b")
    item.value["deep"]["x"] = 2
    again = store.get(NS, "prefs")
    again.value["extra"] = True
    before = count[0]
    assert value(store.get(NS, "prefs")) == {"theme": "dark", "tags": ["a"], "deep": {"x": 1}}
    assert count[0] == before


def test_the_cache_keeps_the_most_recently_read_items(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores.make()
    cache = store.store._core.cache
    monkeypatch.setattr(cache, "_size", 3)
    store.batch([PutOp(NS, f"k{i}", {"i": i}) for i in range(5)])
    count = trips(store, monkeypatch)
    for i in range(5):
        warm(store, NS, f"k{i}", count)
    assert len(cache) == 3
    before = count[0]
    assert [value(store.get(NS, f"k{i}")) for i in (2, 3, 4)] == [{"i": 2}, {"i": 3}, {"i": 4}]
    assert count[0] == before
    assert value(store.get(NS, "k0")) == {"i": 0}
    assert count[0] == before + 1


# ---------------------------------------------------------------- coherence


def test_another_clients_write_is_seen_once_its_hint_arrives(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = stores.make()
    writer = stores.make(namespace=stores.namespaces[-1])
    writer.put(NS, "k", {"n": 0})
    writer.put(NS, "gone", {"n": 0})
    count = trips(reader, monkeypatch)
    assert value(warm(reader, NS, "k", count)) == {"n": 0}
    assert value(warm(reader, NS, "gone", count)) == {"n": 0}
    assert warm(reader, NS, "later", count) is None  # absent, and kept as absent
    waits = []
    for n in range(1, 6):
        writer.put(NS, "k", {"n": n})
        waits.append(within(lambda n=n: value(reader.get(NS, "k")) == {"n": n}))
        warm(reader, NS, "k", count)  # cached again before the next write
    writer.delete(NS, "gone")
    within(lambda: reader.get(NS, "gone") is None)
    writer.put(NS, "later", {"n": 1})
    within(lambda: value(reader.get(NS, "later")) == {"n": 1})
    assert max(waits) < 1.0


def test_another_processs_write_is_seen_once_its_hint_arrives(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = f"lgc-{uuid.uuid4().hex[:12]}"
    key = "odd key\n/é"  # a key holding what the hint separates items with
    with rmem.Client.from_url(redis_url, namespace=ns) as client:
        store = RmemStore(client)
        store.put(NS, key, {"n": 0})
        count = trips(store, monkeypatch)
        assert value(warm(store, NS, key, count)) == {"n": 0}
        code = (
            "import sys, rmem\n"
            "from rmem.integrations.langgraph import RmemStore\n"
            "with rmem.Client.from_url(sys.argv[1], namespace=sys.argv[2], sync=False) as c:\n"
            "    RmemStore(c).put(('users', 'alice'), sys.argv[3], {'n': 1})\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, redis_url, ns, key],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        within(lambda: value(store.get(NS, key)) == {"n": 1})


def test_own_writes_are_seen_at_once(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    store = stores.make()
    other = stores.make(namespace=stores.namespaces[-1])
    # A second store on the same client: it too sees the first one's writes at once.
    sibling = sibling_of(stores, store)
    store.put(NS, "k", {"n": 0})
    count = trips(store, monkeypatch)
    warm(store, NS, "k", count)
    warm(sibling, NS, "k", count)
    warm(store, NS, "absent", count)
    engine = client_of(store)._sync
    # While this thread holds the sync engine's lock, no hint reaches the caches: what they
    # see below comes from the writes' own invalidation.
    with engine.lock:
        for n in range(1, 4):
            store.put(NS, "k", {"n": n})
            assert value(store.get(NS, "k")) == {"n": n}
            assert value(sibling.get(NS, "k")) == {"n": n}
        store.put(NS, "absent", {"n": 1})
        assert value(store.get(NS, "absent")) == {"n": 1}
        store.delete(NS, "k")
        assert store.get(NS, "k") is None
        assert sibling.get(NS, "k") is None
        # Reads of a batch still see the store as it was before the batch's puts.
        got = store.batch([GetOp(NS, "absent"), PutOp(NS, "absent", {"n": 2})])
        assert value(got[0]) == {"n": 1}
        assert value(store.get(NS, "absent")) == {"n": 2}
    other.put(NS, "k", {"n": 9})  # and the hints still arrive afterwards
    within(lambda: value(store.get(NS, "k")) == {"n": 9})


def test_a_read_overtaken_by_a_hint_is_not_kept(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores.make()
    ns = stores.namespaces[-1]
    store.put(NS, "k", {"n": 0})
    count = trips(store, monkeypatch)
    warm(store, NS, "absent", count)  # subscribed: reads fill the cache from here on
    cache = store.store._core.cache
    backend = client_of(store)._backend
    read = backend.pipeline
    with rmem.Client.from_url(stores.url, namespace=ns, sync=False) as other:
        writer = RmemStore(other)

        def overtake() -> None:
            # The read has its reply (n=0); another instance writes, and its hint reaches
            # this client's cache, before the reply gets back to the store.
            gen = cache._gen
            writer.put(NS, "k", {"n": 1})
            within(lambda: cache._gen > gen)

        if inspect.iscoroutinefunction(read):

            async def overtaken_async(*args: Any, **kwargs: Any) -> Any:
                reply = await read(*args, **kwargs)
                overtake()
                return reply

            monkeypatch.setattr(backend, "pipeline", overtaken_async)
        else:

            def overtaken(*args: Any, **kwargs: Any) -> Any:
                reply = read(*args, **kwargs)
                overtake()
                return reply

            monkeypatch.setattr(backend, "pipeline", overtaken)
        assert value(store.get(NS, "k")) == {"n": 0}  # what Redis held when it was read
    monkeypatch.setattr(backend, "pipeline", read)
    assert value(store.get(NS, "k")) == {"n": 1}  # not the overtaken read, kept


def test_items_with_a_ttl_are_not_kept_and_reads_restart_their_ttl(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    store = stores.make(ttl={"default_ttl": 1, "refresh_on_read": True})
    ns = stores.namespaces[-1]
    store.put(NS, "k", {"n": 0})
    ikey = item_key(ns, encode_path(NS), "k")
    count = trips(store, monkeypatch)
    assert client_of(store).wait_synced()
    for _ in range(3):
        raw.pexpire(ikey, 5000)
        before = count[0]
        assert value(store.get(NS, "k")) == {"n": 0}
        assert count[0] >= before + 1  # read from Redis, then touched
        assert raw.pttl(ikey) > 50_000  # the TTL of 1 minute restarted
    assert len(store.store._core.cache) == 0


def test_a_client_without_sync_reads_redis_every_time(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = f"lgc-{uuid.uuid4().hex[:12]}"
    with rmem.Client.from_url(redis_url, namespace=ns, sync=False) as client:
        store = RmemStore(client)
        assert store._core.cache is None
        store.put(NS, "k", {"n": 0})
        count = trips(store, monkeypatch)
        for _ in range(5):
            assert value(store.get(NS, "k")) == {"n": 0}
            assert value(store.batch([GetOp(NS, "k")])[0]) == {"n": 0}
        assert count[0] == 10


def test_a_reconnect_of_the_sync_connection_drops_the_cache(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    store = stores.make()
    ns = stores.namespaces[-1]
    store.put(NS, "k", {"n": 0})
    count = trips(store, monkeypatch)
    warm(store, NS, "k", count)
    # A change that sends no hint, as one sent while the connection is down would be missed.
    raw.hset(item_key(ns, encode_path(NS), "k"), "val", pack({"n": 1}))
    assert value(store.get(NS, "k")) == {"n": 0}  # served from the cache: it cannot know
    engine = client_of(store)._sync
    epoch = engine._epoch
    assert raw.client_kill_filter(_type="pubsub") >= 1
    within(lambda: engine._epoch > epoch)
    assert value(store.get(NS, "k")) == {"n": 1}


# ---------------------------------------------------------------- the hint


def test_item_hints_are_not_foreign_messages(
    stores: Stores, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    writer = stores.make()
    ns = stores.namespaces[-1]
    with rmem.Client.from_url(stores.url, namespace=ns) as plain:
        assert plain.wait_synced()  # a client with no store: it gets the hints all the same
        pubsub = raw.pubsub()
        pubsub.subscribe(sync_channel(ns))
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        with caplog.at_level(logging.WARNING, logger="rmem.sync"):
            writer.batch([PutOp(NS, "a", {"n": 1}), PutOp(("x",), "b\n", None)])
            message = pubsub.get_message(timeout=5)
            assert message is not None
            assert _parse_item_hint(message["data"]) == [f"{encode_path(NS)}/a", "x/b\n"]
            assert pubsub.get_message(timeout=0.2) is None  # one hint per script call
            assert not [r for r in caplog.records if "not a sync hint" in r.getMessage()]
            # Something else's message on the channel that looks like one is still foreign.
            raw.publish(sync_channel(ns), b"lg\nnot a length")
            within(lambda: any("not a sync hint" in r.getMessage() for r in caplog.records))
        pubsub.close()
    assert [r for r in caplog.records if "not a sync hint" in r.getMessage()]


@pytest.mark.parametrize(
    ("data", "refs"),
    [
        (b"lg\n3\nx/y", ["x/y"]),
        (b"lg\n3\nx/y\n4\na.b/", ["x/y", "a.b/"]),
        ("lg\n6\nx/\n/é".encode(), ["x/\n/é"]),  # lengths in bytes
        (b"lg", None),
        (b"lg\n9\nx/y", None),
        (b"lg\nx\nx/y", None),
        (b"lg\n3\nx/yz", None),
        (b"lg\n2\n\xff\xfe", None),
    ],
)
def test_item_hints_parse(data: bytes, refs: list[str] | None) -> None:
    assert _parse_item_hint(data) == refs
