"""The package's own promises: public API, generated sync code, Lua script headers."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import rmem
from rmem import _lua

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_complete() -> None:
    assert rmem.__all__ == sorted(rmem.__all__)
    public = {n for n in dir(rmem) if not n.startswith("_") and n != "annotations"}
    public -= {"server", "cli", "demo", "embedders", "integrations"}  # submodules
    assert public <= set(rmem.__all__), public - set(rmem.__all__)
    for name in rmem.__all__:
        assert hasattr(rmem, name), name


def test_every_public_name_and_method_has_a_docstring() -> None:
    missing = []
    for name in rmem.__all__:
        obj = getattr(rmem, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("rmem."):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (callable(member) or isinstance(member, property)):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert not missing


def test_errors_form_one_tree() -> None:
    for name in [
        "BackendError",
        "CorruptDataError",
        "NotFoundError",
        "ServerError",
        "UnavailableError",
        "ValidationError",
    ]:
        assert issubclass(getattr(rmem, name), rmem.RmemError)
    assert issubclass(rmem.ValidationError, ValueError)


def test_sync_and_async_clients_have_the_same_methods() -> None:
    def names(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")} - {"aclose", "close"}

    assert names(rmem.Client) == names(rmem.AsyncClient)
    assert names(rmem.Session) == names(rmem.AsyncSession)
    assert hasattr(rmem.Client, "close") and hasattr(rmem.AsyncClient, "aclose")


def test_generated_sync_code_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/unasync.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_every_script_documents_keys_argv_and_return() -> None:
    scripts = _lua.all_scripts()
    assert {s.name for s in scripts} >= {"session_append", "session_read", "session_pop"}
    for path in sorted(_lua.lua_dir().glob("[!_]*.lua")):
        header = path.read_text().split("\n\n", 1)[0]
        assert header.startswith(f"-- {path.stem}:"), path.name
        assert "KEYS[1]" in header, path.name
        assert "Returns" in header, path.name


def test_lua_files_ship_inside_the_package_build_config() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"lua" = "rmem/lua"' in text
    assert (ROOT / "rmem" / "py.typed").exists()
