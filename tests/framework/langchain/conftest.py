"""Run the vendored LangChain tests on rmem: a Redis URL per test, and async tests without plugins.

langchain-core runs its tests with pytest-asyncio in auto mode; rmem's test environment has no
async plugin (pytest-asyncio's configure hook warns, which rmem's ``filterwarnings = error``
turns into a failure of the whole run), so coroutine tests here run in a fresh event loop with
``asyncio.run``, and the histories they made are closed in that same loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from tests.framework.langchain._rmem import STATE


@pytest.fixture(autouse=True)
def _rmem_histories(redis_url: str) -> Iterator[None]:
    created: list[Any] = []
    STATE.update(redis_url=redis_url, created=created)
    try:
        yield
    finally:
        for history in created:
            history.close()
        STATE.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        try:
            await pyfuncitem.obj(**kwargs)
        finally:
            for history in STATE.get("created", []):
                await history.aclose()

    asyncio.run(run())
    return True
