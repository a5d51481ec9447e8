"""A LangGraph store on rmem: long-term agent memory shared through Redis.

    from rmem.integrations.langgraph import RmemStore

    with RmemStore.from_conn_string("redis://127.0.0.1:6379/0") as store:
        store.setup()
        store.put(("users", "alice"), "prefs", {"theme": "dark"})
        store.get(("users", "alice"), "prefs").value            # {'theme': 'dark'}
        store.search(("users",), filter={"theme": "dark"})
        store.list_namespaces(prefix=("users",))

:class:`RmemStore` (sync; ``abatch`` runs ``batch`` in a worker thread, as LangGraph's
PostgresStore does) and :class:`AsyncRmemStore` (asyncio; concurrent calls are batched by
LangGraph's ``AsyncBatchedBaseStore``) are LangGraph ``BaseStore`` implementations: ``batch``
and ``abatch`` over ``GetOp``, ``PutOp`` (``value=None`` deletes), ``SearchOp`` and
``ListNamespacesOp``. Both plan each batch with the same I/O-free code
(``rmem.integrations._langgraph_core``) and differ only in how round trips are sent.

- Namespaces are tuples of labels; labels that LangGraph refuses (not a str, empty, holding
  "." or NUL) raise :class:`InvalidNamespace` (an ``rmem.ValidationError`` and LangGraph's
  ``InvalidNamespaceError``) before anything in the batch is written. ``put`` also refuses
  an empty namespace and the root label ``"langgraph"``; ``batch`` accepts that root, which
  LangGraph reserves for its own writes (as its InMemoryStore does).
- ``index={"dims": ..., "embed": ..., "fields": [...]}`` enables semantic search (HNSW on
  RediSearch; ``distance_type`` cosine, inner_product or l2 and ``ann_index_config.
  vector_type`` vector or halfvec are accepted as PostgresStore takes them).
- ``filter=`` supports ``$eq $ne $gt $gte $lt $lte`` on value fields, nested dicts and lists.
- ``ttl={"default_ttl": minutes, "refresh_on_read": True}``: items expire in Redis itself;
  reads with ``refresh_ttl`` restart the clock. Expired items are never returned.
- Each put or delete is one atomic Lua script (``lua/lgstore_put.lua``) for the whole batch,
  which also publishes one pub/sub hint naming the items it changed.
- Gets (``get``, and the ``GetOp`` of ``batch``/``abatch``): with the default client
  (``sync=True``), a get of an item without a TTL that this store read before is answered
  from process memory, without a round trip; any other get is one ``HMGET`` round trip.
  Coherence: a store reads its own writes, and those of every store on the same client, at
  once; another client's or process's write is seen once its hint reaches this process's
  sync thread (typically ~1 ms). While the sync connection is down or being re-established,
  or the client runs on its local fallback, gets read Redis (or the fallback), and what was
  kept is dropped. Each get returns a new ``Item``: changing its ``value`` changes nothing
  kept. Searches and namespace listings always read Redis. With ``sync=False`` every get is
  one round trip.

Importing this module without LangGraph raises :class:`MissingExtraError` (an
``ImportError`` and an ``rmem.RmemError``) naming ``pip install 'rmem[langgraph]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from rmem._async._backend import AsyncBackend
from rmem._async.client import AsyncClient
from rmem._errors import MissingExtraError, RmemError, ValidationError
from rmem._lua import ScriptCall
from rmem._sync._backend import Backend
from rmem._sync.client import Client

__all__ = ["AsyncRmemStore", "InvalidNamespace", "MissingExtraError", "RmemStore"]


try:
    from langgraph.store.base import BaseStore, IndexConfig, Item, Op, Result, TTLConfig
    from langgraph.store.base.batch import AsyncBatchedBaseStore
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(
        "rmem.integrations.langgraph needs LangGraph: pip install 'rmem[langgraph]'"
    ) from exc

# Imported once LangGraph is known to be there: the core builds on its types.
from rmem.integrations._langgraph_cache import ItemCache
from rmem.integrations._langgraph_core import (
    Embed,
    InvalidNamespace,
    Plan,
    ScriptStep,
    StoreCore,
    check_ttl_config,
    now_ms,
    parse_index,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
_DEFAULT_SWEEP_MINUTES = 5.0


def _run(core: StoreCore, client: Client, plan: Plan[T]) -> T:
    """Drive a plan with the sync backend (and the sync embedding methods)."""
    backend = client._backend
    reply: Any = None
    error: RmemError | None = None
    while True:
        try:
            request = plan.throw(error) if error is not None else plan.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        error = None
        if isinstance(request, Embed):
            assert core.index is not None
            embeddings = core.index.embeddings
            if request.query:
                reply = [embeddings.embed_query(t) for t in request.texts]
            else:
                reply = embeddings.embed_documents(request.texts)
            continue
        try:
            steps = [ScriptCall(*s) if isinstance(s, ScriptStep) else s for s in request]
            reply = backend.pipeline(steps, namespace=core.namespace)
        except RmemError as exc:
            error = exc


async def _arun(core: StoreCore, client: AsyncClient, plan: Plan[T]) -> T:
    """Drive a plan with the async backend (and the async embedding methods)."""
    backend = client._backend
    reply: Any = None
    error: RmemError | None = None
    while True:
        try:
            request = plan.throw(error) if error is not None else plan.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        error = None
        if isinstance(request, Embed):
            assert core.index is not None
            embeddings = core.index.embeddings
            if request.query:
                reply = await asyncio.gather(*(embeddings.aembed_query(t) for t in request.texts))
            else:
                reply = await embeddings.aembed_documents(request.texts)
            continue
        try:
            steps = [ScriptCall(*s) if isinstance(s, ScriptStep) else s for s in request]
            reply = await backend.pipeline(steps, namespace=core.namespace)
        except RmemError as exc:
            error = exc


def _core(
    namespace: str, client: Client | AsyncClient, index: IndexConfig | None
) -> tuple[StoreCore, IndexConfig | None]:
    settings = client.settings
    backend = client._backend
    # Without a sync thread (sync=False) nothing would tell the cache of other writers.
    cache = None if client._sync is None else ItemCache(client._sync, namespace, _degraded(backend))
    core = StoreCore(namespace, settings, parse_index(index, settings), cache)
    return core, (IndexConfig(**index) if index else None)


def _degraded(backend: Backend | AsyncBackend) -> Callable[[], bool]:
    return lambda: backend.degraded


class RmemStore(BaseStore):
    """LangGraph ``BaseStore`` on an :class:`rmem.Client` (see the module docstring).

    Args:
        client: the rmem client; the store lives in its namespace, so stores in different
            namespaces never see each other's items. The caller closes the client, unless
            the store came from :meth:`from_conn_string`.
        index: LangGraph ``IndexConfig`` for semantic search (``dims``, ``embed``,
            ``fields``); without it, ``query=`` is ignored and search lists and filters.
        ttl: LangGraph ``TTLConfig`` (``default_ttl`` in minutes, ``refresh_on_read``).

    Raises:
        ValidationError: a bad ``index`` or ``ttl`` config, or ``client`` is not an rmem.Client.
    """

    supports_ttl = True

    def __init__(
        self, client: Client, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> None:
        if not isinstance(client, Client):
            raise ValidationError(
                f"RmemStore takes an rmem.Client, not {type(client).__name__}; "
                "from a URL use RmemStore.from_conn_string(url)"
            )
        self._client = client
        self._core, self.index_config = _core(client.namespace, client, index)
        self.embeddings = self._core.index.embeddings if self._core.index else None
        self.ttl_config = check_ttl_config(ttl)
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        namespace: str | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        **options: Any,
    ) -> Iterator[RmemStore]:
        """Open a store on ``conn_string`` (a ``redis://`` URL) and close it on exit.

        ``namespace`` is the rmem namespace holding the store (default: ``RMEM_NAMESPACE``
        or "default"); ``options`` are :class:`rmem.Settings` fields.
        """
        client = Client.from_url(conn_string, namespace=namespace, **options)
        try:
            yield cls(client, index=index, ttl=ttl)
        finally:
            client.close()

    @property
    def client(self) -> Client:
        """The rmem client the store works through."""
        return self._client

    def setup(self) -> None:
        """Create the store's search indexes if they do not exist (idempotent).

        Batches do this themselves on first use; calling it up front surfaces errors early.

        Raises:
            SchemaMismatchError: the vector index exists with other dims or distance.
        """
        _run(self._core, self._client, self._core.plan_setup())

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """Return the item, or None (``BaseStore.get``: from the store's item cache when it
        holds the item, else one ``HMGET`` round trip; see the module docstring).

        Raises:
            InvalidNamespace: a namespace label LangGraph refuses.
        """
        if refresh_ttl is None:
            refresh_ttl = (self.ttl_config or {}).get("refresh_on_read", True)
        plan = self._core.plan_get(namespace, str(key), bool(refresh_ttl))
        return _run(self._core, self._client, plan)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``; reads see the store as it was before the batch's puts (as PostgresStore).

        Raises:
            InvalidNamespace: a namespace label LangGraph refuses; nothing is written.
            ValidationError: any other bad op or value; nothing is written.
        """
        return _run(self._core, self._client, self._core.plan_batch(ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (use :class:`AsyncRmemStore` for asyncio I/O)."""
        ops = list(ops)
        return await asyncio.get_running_loop().run_in_executor(None, self.batch, ops)

    def sweep_ttl(self) -> int:
        """Drop namespace listings whose items have all expired; return how many.

        Redis deletes expired items itself, and reads never return them; sweeping only
        keeps the namespace registry small.
        """
        return int(self._client._backend.call(*_sweep_command(self._core)))

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Run :meth:`sweep_ttl` every interval in a daemon thread until stopped."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive():
            future.set_result(None)
            return future
        minutes = _interval(sweep_interval_minutes, self.ttl_config)
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(minutes * 60):
                try:
                    self.sweep_ttl()
                except RmemError:
                    logger.exception("rmem LangGraph store: TTL sweep failed")
            future.set_result(None)

        self._sweeper = threading.Thread(target=loop, name="rmem-lgstore-sweeper", daemon=True)
        self._sweeper.start()
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; return False if it did not stop within ``timeout`` s."""
        if self._sweeper is None:
            return True
        self._stop.set()
        self._sweeper.join(timeout)
        stopped = not self._sweeper.is_alive()
        if stopped:
            self._sweeper = None
        return stopped


class AsyncRmemStore(AsyncBatchedBaseStore):
    """LangGraph ``BaseStore`` on an :class:`rmem.AsyncClient`, for asyncio applications.

    Create it inside a running event loop (LangGraph's ``AsyncBatchedBaseStore`` batches
    concurrent calls on it). Sync methods work from other threads and refuse, with
    ``asyncio.InvalidStateError``, to block the loop's own thread. Arguments as
    :class:`RmemStore`.
    """

    supports_ttl = True

    def __init__(
        self,
        client: AsyncClient,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        if not isinstance(client, AsyncClient):
            raise ValidationError(
                f"AsyncRmemStore takes an rmem.AsyncClient, not {type(client).__name__}; "
                "from a URL use AsyncRmemStore.from_conn_string(url)"
            )
        super().__init__()
        self._client = client
        self._core, self.index_config = _core(client.namespace, client, index)
        self.embeddings = self._core.index.embeddings if self._core.index else None
        self.ttl_config = check_ttl_config(ttl)
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        namespace: str | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        **options: Any,
    ) -> AsyncIterator[AsyncRmemStore]:
        """Open a store on ``conn_string``; on exit stop its tasks and close the client."""
        client = AsyncClient.from_url(conn_string, namespace=namespace, **options)
        store: AsyncRmemStore | None = None
        try:
            store = cls(client, index=index, ttl=ttl)
            yield store
        finally:
            if store is not None:
                await store.stop_ttl_sweeper()
                await store._stop_batching()
            await client.aclose()

    @property
    def client(self) -> AsyncClient:
        """The rmem client the store works through."""
        return self._client

    async def setup(self) -> None:
        """Create the store's search indexes if they do not exist (see RmemStore.setup)."""
        await _arun(self._core, self._client, self._core.plan_setup())

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (see :meth:`RmemStore.batch`)."""
        return await _arun(self._core, self._client, self._core.plan_batch(ops))

    async def sweep_ttl(self) -> int:
        """Drop namespace listings whose items have all expired (see RmemStore.sweep_ttl)."""
        return int(await self._client._backend.call(*_sweep_command(self._core)))

    async def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> asyncio.Task[None]:
        """Run :meth:`sweep_ttl` every interval in a task until stopped."""
        if self._sweeper is not None and not self._sweeper.done():
            return self._sweeper
        minutes = _interval(sweep_interval_minutes, self.ttl_config)

        async def loop() -> None:
            while True:
                await asyncio.sleep(minutes * 60)
                try:
                    await self.sweep_ttl()
                except RmemError:
                    logger.exception("rmem LangGraph store: TTL sweep failed")

        self._sweeper = asyncio.create_task(loop())
        return self._sweeper

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        # (LangGraph's async stores take ``timeout`` here; the signature is theirs.)
        """Stop the sweeper task; return False if it did not stop within ``timeout`` s."""
        task, self._sweeper = self._sweeper, None
        if task is None or task.done():
            return True
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def _stop_batching(self) -> None:
        # AsyncBatchedBaseStore runs a queue-draining task forever; end it with the store.
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})


def _sweep_command(core: StoreCore) -> tuple[str, str, str, str]:
    return ("ZREMRANGEBYSCORE", core.keys.registry, "-inf", str(now_ms()))


def _interval(minutes: float | None, config: Mapping[str, Any] | None) -> float:
    value = minutes or (config or {}).get("sweep_interval_minutes") or _DEFAULT_SWEEP_MINUTES
    return float(value)
