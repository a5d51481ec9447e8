"""Harness for the vendored LangGraph store tests (skipped without ``rmem[langgraph]``).

Upstream runs these suites with pytest-asyncio in auto mode; rmem's pytest configuration
has no asyncio mode, so the async tests run on anyio's plugin instead (``pytestmark`` in each
file; anyio is installed with LangGraph's own dependencies). ``mocker`` comes from
pytest-mock, as upstream.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    import langgraph.store.base  # noqa: F401
except ImportError:  # the extra is not installed
    collect_ignore_glob = ["test_*.py"]
else:
    from tests.framework.langgraph import _stores
    from tests.framework.langgraph.embed_test_utils import CharacterEmbeddings

    @pytest.fixture(autouse=True)
    def _rmem_redis(redis_url: str) -> Iterator[None]:
        _stores._url.append(redis_url)
        yield
        _stores.cleanup()
        _stores._url.pop()

    @pytest.fixture
    def fake_embeddings() -> CharacterEmbeddings:
        return CharacterEmbeddings(dims=500)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
