"""Where the time of one ``session.append`` goes: client, network, server (Lua).

Run from the repository root::

    python benchmarks/profile_append.py                 # ~15 s on 2 cores
    python benchmarks/profile_append.py --n 2000        # fewer calls per row
    python benchmarks/profile_append.py --stages        # + the script's cost stage by stage
    python benchmarks/profile_append.py --callgrind     # + instructions per stage (valgrind)
    python benchmarks/profile_append.py --versus OTHER/lua --stages --callgrind
                                   # + this tree's script against another checkout's

Starts its own embedded Redis. Rows, each the p50 of ``--n`` calls from one process, in
alternating blocks so that machine noise hits them alike:

- ``rmem append``: ``Session.append`` of a 200-character message, ``sync=False``;
- ``raw EVALSHA session_append``: redis-py sending the very script call rmem sends, with
  arguments built beforehand (so: rmem without its Python work);
- ``raw EVALSHA of 'return 1'``: one script round trip that does nothing;
- ``raw XADD``: the budget's baseline.

Then the server's own figures from ``INFO commandstats`` over the ``rmem append`` calls:
microseconds per EVALSHA (the whole script, its commands included) and per command the script
runs.

``--stages`` cuts ``session_append.lua`` short (a ``do return 0 end`` inserted before a line)
at successive points and runs each cut version as its own script, one call per round trip as
an agent makes them, on a session of ``--seed`` messages that each round deletes and writes
again: the server µs per call (``INFO commandstats``, reset before each block) of each cut,
and what each stage adds. ``--callgrind`` runs the same cuts on a Redis started under
valgrind's callgrind, counting only inside ``evalShaCommand``: instructions per call, exact
and repeatable where timings on a shared VM are not (cold caches make a single call cost more
than its instructions suggest, so both are shown). ``--versus DIR`` compares the whole
script with ``DIR/session_append.lua`` (another checkout's ``lua/``, e.g. ``git archive main``
unpacked somewhere), each on sessions it wrote itself: server µs per call with ``--stages``,
instructions per call at several session sizes with ``--callgrind``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rmem
from rmem import _lua
from rmem._session_core import append_args, prepare_batch
from rmem.server import EmbeddedRedis, find_redis_server

CONTENT = ("The agent reads the ticket, plans its next step and replies. " * 4)[:200]
BLOCK = 50

# Cut points of session_append.lua, in order: the script returns just before the line that
# starts with the anchor. The path profiled is one new message on an existing session.
STAGES = [
    ("helpers defined, no command", "local nargs = #ARGV"),
    ("+ TIME and the stamp check", "local CHUNK = "),
    ("+ HMGET (meta fields, dedupe field)", "refused = check_integers(META, fields, m, 7)"),
    ("+ field checks and dedupe (Lua)", "local created_ms, change"),
    ("+ HSET", "    redis.call('ZADD', MSGS, 0, member)"),
    ("+ ZADD", "    change = record('a', rev, prefix)"),
    ("+ XADD and PUBLISH", "elseif not exists then"),
    ("+ PEXPIRE x3, reply (whole script)", None),
]


def p50s(rows: dict[str, Callable[[], Any]], n: int) -> dict[str, float]:
    """Run every row ``n`` times in alternating blocks; return the p50 of each in µs."""
    samples: dict[str, list[int]] = {name: [] for name in rows}
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(n // BLOCK):
            for name, fn in rows.items():
                out = samples[name]
                for _ in range(BLOCK):
                    t0 = clock()
                    fn()
                    out.append(clock() - t0)
    finally:
        gc.enable()
    return {name: sorted(s)[len(s) // 2] / 1000 for name, s in samples.items()}


def cut_versions() -> dict[str, str]:
    """session_append.lua cut short at each stage (the last one whole)."""
    source = _lua.SESSION_APPEND.source
    body = source.index("local nargs = #ARGV")
    versions = {}
    for label, anchor in STAGES:
        if anchor is None:
            versions[label] = source
            continue
        at = [m.start() for m in re.finditer(re.escape(anchor), source) if m.start() >= body]
        if len(at) != 1:
            raise SystemExit(
                f"profile_append: stage anchor {anchor!r} not found once: update STAGES"
            )
        versions[label] = source[: at[0]] + "do return 0 end\n" + source[at[0] :]
    return versions


class Runner:
    """Calls of each script version on its own session, reseeded every round.

    Sessions are written by the whole script of this tree, or with ``own_seed`` by each
    version itself (whole scripts of different checkouts store the meta hash differently).
    """

    def __init__(self, url: str, versions: dict[str, str], seed: int, own_seed: bool = False):
        self.raw = redis.Redis.from_url(url, socket_timeout=600)
        self.client = rmem.Client.from_url(url, sync=False, socket_timeout=600)
        self.seed = seed
        self.shas = {label: self.raw.script_load(src) for label, src in versions.items()}
        self.full = self.raw.script_load(_lua.SESSION_APPEND.source)
        self.own_seed = own_seed
        self.sessions = {
            label: self.client.session(f"stage{i}", ttl=3600, sliding=True)
            for i, label in enumerate(versions)
        }

    def args(self, session: Any) -> tuple[Any, ...]:
        stamp = session._clock.now_text()
        msgs, payloads = prepare_batch([{"role": "user", "content": CONTENT}], 1 << 20, 4096)
        flat, _ = append_args(msgs, payloads, stamp)
        return tuple(session._write_args(stamp, *session._policy.args, -1, *flat))

    def reseed(self) -> None:
        for label, session in self.sessions.items():
            keys = list(session._keys)
            sha = self.shas[label] if self.own_seed else self.full
            self.raw.delete(*keys)
            for _ in range(self.seed):
                self.raw.evalsha(sha, 3, *keys, *self.args(session))

    def block(self, label: str, calls: int) -> None:
        session = self.sessions[label]
        keys, sha = list(session._keys), self.shas[label]
        for args in [self.args(session) for _ in range(calls)]:
            self.raw.evalsha(sha, 3, *keys, *args)

    def close(self) -> None:
        self.client.close()
        self.raw.close()


def stage_times(
    url: str, rounds: int, seed: int, versions: dict[str, str] | None = None
) -> dict[str, float]:
    """Median server µs per call of each version (commandstats, one call per trip): the cut
    versions of this tree's script, or ``versions`` (whole scripts, each seeding its own)."""
    runner = Runner(url, versions or cut_versions(), seed, own_seed=versions is not None)
    times: dict[str, list[float]] = {label: [] for label in runner.shas}
    for _ in range(rounds):
        runner.reseed()
        for label in times:
            runner.raw.config_resetstat()
            runner.block(label, BLOCK)
            times[label].append(runner.raw.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
    runner.close()
    return {label: statistics.median(values) for label, values in times.items()}


def stage_instructions(
    seed: int, calls: int = 100, versions: dict[str, str] | None = None
) -> dict[str, float]:
    """Instructions per call of each version, counted by callgrind inside evalShaCommand: the
    cut versions of this tree's script, or ``versions`` (whole scripts, each seeding its own)."""
    valgrind = shutil.which("valgrind")
    control = shutil.which("callgrind_control")
    annotate = shutil.which("callgrind_annotate")
    if not (valgrind and control and annotate):
        raise SystemExit("--callgrind needs valgrind (callgrind_control, callgrind_annotate)")
    with tempfile.TemporaryDirectory(prefix="rmem-callgrind-") as tmp:
        wrapper = Path(tmp) / "redis-server"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec {valgrind} --tool=callgrind --callgrind-out-file={tmp}/cg.%p.out "
            f'--toggle-collect=evalShaCommand --dump-instr=no {find_redis_server()} "$@"\n'
        )
        wrapper.chmod(0o755)
        out: dict[str, float] = {}
        with EmbeddedRedis(redis_server=str(wrapper), startup_timeout=120) as server:
            runner = Runner(server.url, versions or cut_versions(), seed, versions is not None)
            runner.reseed()
            for label in runner.shas:
                runner.block(label, 5)  # warm: the script compiled, the code paths touched
                subprocess.run([control, "-z", str(server.pid)], check=True, capture_output=True)
                runner.block(label, calls)
                subprocess.run(
                    [control, "--dump", str(server.pid)], check=True, capture_output=True
                )
                dump = _dump_file(tmp)
                text = subprocess.run([annotate, dump], capture_output=True, text=True).stdout
                total = re.search(r"^([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text, re.M)
                out[label] = int(total.group(1).replace(",", "")) / calls if total else 0.0
                os.remove(dump)
            runner.close()
    return out


def _dump_file(folder: str, timeout: float = 30.0) -> str:
    # callgrind writes a requested dump when the server next runs (it may be idle in epoll).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dumps = glob.glob(f"{folder}/cg.*.out.*")
        if dumps:
            time.sleep(0.2)  # let it finish writing
            return max(dumps, key=os.path.getmtime)
        time.sleep(0.05)
    raise SystemExit("callgrind wrote no dump")


def stage_table(title: str, unit: str, values: dict[str, float], fmt: str) -> None:
    print(f"\n{title}\n\n| stage | {unit} | added |\n|---|--:|--:|")
    before = 0.0
    for label, value in values.items():
        print(f"| {label} | {value:{fmt}} | {value - before:{fmt}} |")
        before = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="calls per row (default 4000)")
    parser.add_argument("--stages", action="store_true", help="time session_append stage by stage")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of --stages (default 30)")
    parser.add_argument("--seed", type=int, default=100, help="messages per session in --stages")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per stage")
    parser.add_argument("--versus", type=Path, help="another checkout's lua/ folder to compare")
    args = parser.parse_args(argv)
    versus = None
    if args.versus is not None:
        versus = {
            "this tree": _lua.SESSION_APPEND.source,
            str(args.versus): _lua._assemble(args.versus / "session_append.lua"),
        }
    with EmbeddedRedis() as server:
        raw = redis.Redis.from_url(server.url)
        client = rmem.Client.from_url(server.url, sync=False)
        session = client.session("profile", ttl=3600, sliding=True)
        session.append({"role": "user", "content": "warm-up"})
        keys = list(session._keys)

        def script_args() -> tuple[Any, ...]:
            stamp = session._clock.now_text()
            msgs, payloads = prepare_batch([{"role": "user", "content": CONTENT}], 1 << 20, 4096)
            flat, _ = append_args(msgs, payloads, stamp)
            return session._write_args(stamp, *session._policy.args, -1, *flat)

        prepared = iter([script_args() for _ in range(4 * BLOCK)])
        empty = raw.script_load("return 1")
        sha = _lua.SESSION_APPEND.sha
        rows: dict[str, Callable[[], Any]] = {
            "rmem append": lambda: session.append({"role": "user", "content": CONTENT}),
            "raw EVALSHA session_append": lambda: raw.evalsha(sha, 3, *keys, *next(prepared)),
            "raw EVALSHA of 'return 1'": lambda: raw.evalsha(empty, 0),
            "raw XADD": lambda: raw.xadd("profile:raw", {"p": CONTENT}),
        }
        p50s(rows, 4 * BLOCK)  # warm-up
        prepared = iter([script_args() for _ in range(args.n + BLOCK)])
        figures = p50s(rows, args.n)
        raw.config_resetstat()
        for _ in range(args.n):
            session.append({"role": "user", "content": CONTENT})
        stats = raw.info("commandstats")
        client.close()
        stages = stage_times(server.url, args.rounds, args.seed) if args.stages else None
        compared = None
        if versus is not None and args.stages:
            compared = stage_times(server.url, args.rounds, args.seed, versus)
    print(f"Command: `python benchmarks/profile_append.py --n {args.n}`\n")
    print("| row | p50 µs | rmem÷raw XADD |\n|---|--:|--:|")
    base = figures["raw XADD"]
    for name, value in figures.items():
        print(f"| {name} | {value:.0f} | {value / base:.2f}x |")
    print("\nServer, per rmem append (INFO commandstats, µs per call):\n")
    print("| command | calls per append | µs per call |\n|---|--:|--:|")
    for name, st in sorted(stats.items(), key=lambda kv: -kv[1]["usec_per_call"]):
        command = name.removeprefix("cmdstat_")
        if command.startswith("config"):
            continue
        print(f"| {command} | {st['calls'] / args.n:g} | {st['usec_per_call']:.1f} |")
    if stages is not None:
        stage_table(
            f"session_append.lua cut short, server µs per call (median of {args.rounds} rounds of "
            f"{BLOCK} single calls, sessions of {args.seed} messages):",
            "µs per call",
            stages,
            ".1f",
        )
    if compared is not None:
        print(
            f"\nWhole script, server µs per call (median of {args.rounds} rounds of {BLOCK} "
            f"single calls, sessions of {args.seed} messages each version wrote):\n"
        )
        print("| script | µs per call |\n|---|--:|")
        for label, value in compared.items():
            print(f"| {label} | {value:.1f} |")
    if args.callgrind and versus is not None:
        print("\nWhole script, instructions per call (callgrind), by messages in the session:\n")
        sizes = (1, 10, 100, 400, 2000)
        print("| messages | " + " | ".join(versus) + " |\n|--:|" + "--:|" * len(versus))
        for size in sizes:
            counts = stage_instructions(size, versions=versus)
            print(f"| {size:,} | " + " | ".join(f"{counts[k]:,.0f}" for k in versus) + " |")
    if args.callgrind:
        stage_table(
            f"session_append.lua cut short, instructions per call (callgrind, sessions of "
            f"{args.seed} messages):",
            "instructions",
            stage_instructions(args.seed),
            ",.0f",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
