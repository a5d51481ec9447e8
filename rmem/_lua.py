"""The Lua scripts of ``lua/``: found, assembled and hashed once per process (no I/O to Redis).

Each write is one EVALSHA of one of these scripts. A script may pull in a helper file with a line
``--!include _name.lua``; helpers start with ``_`` and are never run on their own. In a wheel the
files live in ``rmem/lua``; in a source checkout, in ``lua/`` beside the package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple, TypeAlias

_INCLUDE = "--!include "


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name (file stem), assembled source and SHA1 for EVALSHA."""

    name: str
    source: str
    sha: str


Arg: TypeAlias = str | bytes | int | float


class ScriptCall(NamedTuple):
    """One script run inside a pipeline (see ``Backend.pipeline``)."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Arg]


Step: TypeAlias = ScriptCall | Sequence[Arg]
"""One step of a pipeline: a script run, or a plain command."""


@cache
def lua_dir() -> Path:
    """Return the folder holding the ``.lua`` files (wheel layout first, then checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lua", here.parent / "lua"):
        if (candidate / "session_append.lua").is_file():
            return candidate
    raise FileNotFoundError(f"rmem's Lua scripts are missing (looked in {here}/lua and ../lua)")


def _assemble(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_INCLUDE):
            lines.append(_assemble(path.parent / line[len(_INCLUDE) :].strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@cache
def script(name: str) -> Script:
    """Return the script ``lua/<name>.lua``, assembled."""
    source = _assemble(lua_dir() / f"{name}.lua")
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def all_scripts() -> list[Script]:
    """Return every runnable script (helpers excluded), sorted by name."""
    return [script(p.stem) for p in sorted(lua_dir().glob("[!_]*.lua"))]


SESSION_APPEND = script("session_append")
SESSION_READ = script("session_read")
SESSION_POP = script("session_pop")
SESSION_CLEAR = script("session_clear")
SESSION_DELETE = script("session_delete")
SESSION_EXPIRE = script("session_expire")
SESSION_TOUCH = script("session_touch")
SESSION_SYNC = script("session_sync")
SESSION_SEED = script("session_seed")
SESSIONS_PRUNE = script("sessions_prune")
MEMORY_PUT = script("memory_put")
MEMORY_UPDATE = script("memory_update")
MEMORY_DELETE = script("memory_delete")
MEMORY_COUNT = script("memory_count")


def commands_of(steps: Sequence[Step]) -> list[tuple[Arg, ...]]:
    """Turn pipeline steps into the commands sent for them (scripts run as EVALSHA)."""
    return [
        ("EVALSHA", s.script.sha, len(s.keys), *s.keys, *s.args)
        if isinstance(s, ScriptCall)
        else tuple(s)
        for s in steps
    ]
