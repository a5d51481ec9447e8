"""The README's Python examples run as written (against the test server)."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, redis_url: str, namespace: str) -> None:
    code = BLOCKS[index].replace("redis://127.0.0.1:6379/0", redis_url)
    code = code.replace('namespace="acme"', f"namespace={namespace!r}")
    scope: dict[str, object] = {}
    if "await " in code or "async with" in code:
        body = textwrap.indent(code, "    ")
        exec(f"import rmem\nasync def _example():\n{body}\n", scope)
        asyncio.run(scope["_example"]())  # type: ignore[operator]
    else:
        exec("import rmem\n" + code, scope)
