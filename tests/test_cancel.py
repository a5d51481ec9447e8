"""A task cancelled while it awaits an rmem call ends cancelled (rmem/_cancel.py).

On Python 3.11, redis-py's asyncio connections send through ``asyncio.wait_for``, which drops
a cancellation that lands as the send completes. Before rmem raised it again, a task looping
over rmem calls ran on after ``cancel()`` about one time in five here, and a LangGraph
store's TTL sweeper task could not be stopped (its teardown waited forever).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import rmem
from rmem.integrations.langgraph import AsyncRmemStore


async def _cancel_at_random_points(call: Callable[[], Awaitable[None]], rounds: int) -> list[int]:
    """Cancel a task that loops over ``call`` ``rounds`` times, each after 0-8 loop steps;
    return the rounds whose task did not end cancelled within 2 s."""
    missed = []
    for i in range(rounds):

        async def loop() -> None:
            while True:
                await call()

        task = asyncio.create_task(loop())
        for _ in range(random.randint(0, 8)):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task}, timeout=2)
        if not task.cancelled():
            missed.append(i)
            task.cancel()
            await asyncio.wait({task}, timeout=2)
            if len(missed) >= 3:
                break
    return missed


def test_a_cancelled_task_that_loops_over_calls_ends_cancelled(
    redis_url: str, namespace: str
) -> None:
    async def main() -> None:
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace, sync=False) as c:
            session = c.session("cancelled")

            async def call() -> None:
                await session.append({"role": "user", "content": "x"})
                await session.messages(last=5)

            assert await _cancel_at_random_points(call, 300) == []
            # The connections a cancellation broke are replaced: the client still works.
            await session.append({"role": "user", "id": "after", "content": "still works"})
            assert (await session.messages(last=1))[0].id == "after"

    asyncio.run(main())


def test_a_langgraph_store_s_ttl_sweeper_always_stops(redis_url: str, namespace: str) -> None:
    async def main() -> list[int]:
        ttl = {"default_ttl": 1.0, "sweep_interval_minutes": 0.00002}  # a sweep every ~1 ms
        stuck = []
        async with AsyncRmemStore.from_conn_string(redis_url, namespace=namespace, ttl=ttl) as s:
            for i in range(150):
                await s.start_ttl_sweeper()
                await asyncio.sleep(random.uniform(0, 0.004))
                if not await s.stop_ttl_sweeper(timeout=2):
                    stuck.append(i)
                    if len(stuck) >= 3:
                        break
        return stuck

    assert asyncio.run(main()) == []
