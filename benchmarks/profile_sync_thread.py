"""What the sync thread costs a writing process: CPU per own hint, and append latency.

Run from the repository root::

    python benchmarks/profile_sync_thread.py             # ~1 min on 2 cores
    python benchmarks/profile_sync_thread.py --n 500     # fewer appends per block
    python benchmarks/profile_sync_thread.py --replicas 10000   # with 10,000 other replicas open

Every session write publishes a hint, and the writer's own sync thread receives it too
(decision 29: it then does nothing with it but deliver events). This script appends
one 200-character message at a time to one session, from a client with ``sync=True`` (the
thread runs: the session's replica is open) and one with ``sync=False`` (no thread), in
alternating blocks on one embedded Redis, and reports per append:

- ``p50 µs`` and ``mean µs``: wall time of ``Session.append``;
- ``writer CPU µs``: the writing thread's CPU (``time.thread_time``);
- ``sync thread CPU µs``: the CPU of the process's other threads (Linux
  ``/proc/self/task/*/stat``; clock-tick resolution, hence blocks of many appends).

``--replicas N`` first opens the replicas of N other (empty) sessions in the ``sync=True``
client, as a server holding many conversations would: the thread's work per hint should not
grow with them.

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rmem
from rmem.server import EmbeddedRedis

MESSAGE = {"role": "user", "content": "x" * 200}


def _other_threads_cpu() -> float:
    """Seconds of CPU used so far by this process's threads other than the caller's."""
    me, total = threading.get_native_id(), 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def block(session: rmem.Session, n: int) -> tuple[list[int], float, float]:
    """``n`` appends: their wall times (ns), the writer's CPU and the other threads' (s)."""
    gc.collect()
    gc.disable()
    try:
        times: list[int] = []
        other, mine = _other_threads_cpu(), time.thread_time()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            session.append(MESSAGE)
            times.append(time.perf_counter_ns() - t0)
        mine = time.thread_time() - mine
        time.sleep(0.05)  # the last hints reach the sync thread
        return times, mine, _other_threads_cpu() - other
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="appends per block (default 2000)")
    parser.add_argument("--blocks", type=int, default=6, help="blocks per client (default 6)")
    parser.add_argument(
        "--replicas", type=int, default=0, help="other replicas to open first (default 0)"
    )
    args = parser.parse_args(argv)
    with EmbeddedRedis() as server:
        clients = {
            # Namespaces of their own: the thread hears the hints of its namespace alone.
            "sync=True": rmem.Client.from_url(server.url, namespace="profile-on"),
            "sync=False": rmem.Client.from_url(server.url, namespace="profile-off", sync=False),
        }
        sessions = {name: c.session(f"s-{name}") for name, c in clients.items()}
        for session in sessions.values():
            for _ in range(200):
                session.append(MESSAGE)
            session.messages()  # with sync=True, opens the replica: the thread runs
        for i in range(args.replicas):
            clients["sync=True"].session(f"other-{i}").messages()
        assert clients["sync=True"].wait_synced()
        time.sleep(1)  # the thread catches the new replicas up
        results: dict[str, tuple[list[int], float, float]] = {n: ([], 0.0, 0.0) for n in sessions}
        for b in range(args.blocks):
            for name in list(sessions)[b % 2 :] + list(sessions)[: b % 2]:
                times, mine, other = block(sessions[name], args.n)
                t, m, o = results[name]
                results[name] = (t + times, m + mine, o + other)
        for c in clients.values():
            c.close()
    print("| client | p50 µs | mean µs | writer CPU µs | sync thread CPU µs |")
    print("|---|--:|--:|--:|--:|")
    for name, (times, mine, other) in results.items():
        count = len(times)
        print(
            f"| {name} | {statistics.median(times) / 1e3:,.0f} | "
            f"{statistics.fmean(times) / 1e3:,.0f} | {mine / count * 1e6:,.0f} | "
            f"{other / count * 1e6:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
