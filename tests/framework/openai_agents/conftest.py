"""Harness for the vendored OpenAI Agents SDK session tests.

It stands in for what those tests get upstream from pytest-asyncio and the SDK's conftest:

- ``async def`` tests run to completion with ``asyncio.run`` (rmem does not use
  pytest-asyncio); sessions and clients a test opened through ``_target`` are closed on the
  same loop afterwards;
- the ``asyncio`` and ``serial`` marks the tests carry are registered (``--strict-markers``);
- tracing is disabled (upstream installs an in-memory span processor), so no run tries to
  export traces;
- ``_target`` points at the harness's embedded Redis and a fresh namespace per test.

Without the SDK installed, each test module skips itself (``pytest.importorskip``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from tests.framework.openai_agents import _target


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: an async test, run with asyncio.run here")
    config.addinivalue_line("markers", "serial: upstream runs it outside xdist workers")


@pytest.fixture(scope="session", autouse=True)
def _no_tracing() -> Iterator[None]:
    # Imported here: without the SDK the test modules skip themselves (importorskip).
    from agents import set_tracing_disabled

    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


@pytest.fixture(autouse=True)
def _rmem_target(redis_url: str, namespace: str) -> None:
    _target.bind(redis_url, namespace)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if pyfuncitem.config.pluginmanager.has_plugin("asyncio"):
        return None  # pytest-asyncio installed: let it run the test
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def run() -> None:
        try:
            await pyfuncitem.obj(**args)
        finally:
            await _target.close_all()

    asyncio.run(run())
    return True
