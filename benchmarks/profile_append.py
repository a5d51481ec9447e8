"""Where the time of one ``session.append`` goes: client, network, server (Lua).

Run from the repository root::

    python benchmarks/profile_append.py             # ~10 s on 2 cores
    python benchmarks/profile_append.py --n 2000    # fewer calls per row

Starts its own embedded Redis. Rows, each the p50 of ``--n`` calls from one process, in
alternating blocks so that machine noise hits them alike:

- ``rmem append``: ``Session.append`` of a 200-character message, ``sync=False``;
- ``raw EVALSHA session_append``: redis-py sending the very script call rmem sends, with
  arguments built beforehand (so: rmem without its Python work);
- ``raw EVALSHA of 'return 1'``: one script round trip that does nothing;
- ``raw XADD``: the budget's baseline.

Then the server's own figures from ``INFO commandstats`` over the ``rmem append`` calls:
microseconds per EVALSHA (the whole script, its commands included) and per command the script
runs. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rmem
from rmem import _lua
from rmem._session_core import append_args, prepare_batch
from rmem.server import EmbeddedRedis

CONTENT = ("The agent reads the ticket, plans its next step and replies. " * 4)[:200]
BLOCK = 50


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="calls per row (default 4000)")
    args = parser.parse_args(argv)
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

        prepared = iter([script_args() for _ in range(args.n + BLOCK)])
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
