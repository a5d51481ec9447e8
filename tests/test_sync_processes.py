"""Convergence across real processes: 4 writers, random concurrent updates, deletes, appends."""

from __future__ import annotations

import multiprocessing
import queue
import time

import pytest

import rmem
from tests._sync_worker import RECORDS, SESSION, writer

WRITERS = 4
OPS = 300


@pytest.mark.timeout(180)
@pytest.mark.parametrize("round_seed", [1, 2, 3])
def test_four_processes_converge_with_redis(
    redis_url: str, namespace: str, round_seed: int
) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    out = ctx.Queue()
    seeds = [round_seed * 100 + i for i in range(WRITERS)]
    procs = [
        ctx.Process(target=writer, args=(redis_url, namespace, seed, OPS, barrier, out))
        for seed in seeds
    ]
    for p in procs:
        p.start()
    views = {}
    deadline = time.monotonic() + 100
    try:
        for _ in procs:
            seed, view = out.get(timeout=max(1.0, deadline - time.monotonic()))
            views[seed] = view
    except queue.Empty:
        pytest.fail(f"writers did not report (exit codes {[p.exitcode for p in procs]})")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as reader:
        truth_messages = [m.id for m in reader.session(SESSION).messages()]
        truth_records = {}
        for rid in RECORDS:
            found = reader.memories.get(rid)
            truth_records[rid] = None if found is None else (found.stamp, found.text)
    assert len(truth_messages) > 0
    assert any(v is None for v in truth_records.values())  # some deletes won
    assert any(v is not None for v in truth_records.values())  # some writes won
    for seed, view in views.items():
        assert view["messages"] == truth_messages, f"writer {seed}: message order differs"
        assert view["records"] == truth_records, f"writer {seed}: records differ"
