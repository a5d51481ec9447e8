"""A writer process for the convergence test (run under multiprocessing's spawn)."""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

import rmem

RECORDS = [f"r{i:03d}" for i in range(100)]
SESSION = "shared"


def replica_view(client: rmem.Client, timeout: float = 20.0) -> dict[str, Any]:
    """What this process's replicas hold, once every one of them is fresh."""
    sync = client._sync
    assert sync is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records: dict[str, Any] = {}
        with sync.lock:
            replica = sync.session(client.namespace, SESSION)
            messages = None if replica is None else [m.id for m in replica.messages]
        for rid in RECORDS:
            known, found = sync.record(client.namespace, rid)
            if not known:
                break
            records[rid] = None if found is None else (found.stamp, found.text)
        if messages is not None and len(records) == len(RECORDS):
            return {"messages": messages, "records": records}
        time.sleep(0.01)
    raise AssertionError("the replicas did not catch up")


def writer(url: str, namespace: str, seed: int, ops: int, barrier: Any, out: Any) -> None:
    rng = random.Random(seed)
    with rmem.Client.from_url(url, namespace=namespace) as client:
        assert client.wait_synced(timeout=30)
        session = client.session(SESSION)
        session.messages()  # hold a replica of the session and of every record
        for rid in RECORDS:
            client.memories.get(rid)
        barrier.wait(timeout=60)
        for op in range(ops):
            rid = rng.choice(RECORDS)
            roll = rng.random()
            if roll < 0.35:
                # A concurrent delete stamped later wins: add() then says so (NotFoundError).
                with contextlib.suppress(rmem.NotFoundError):
                    client.memories.add(f"seed {seed} op {op}", id=rid)
            elif roll < 0.5:
                with contextlib.suppress(rmem.NotFoundError):
                    client.memories.update(rid, text=f"seed {seed} op {op} updated")
            elif roll < 0.65:
                client.memories.delete(rid)
            elif roll < 0.9:
                session.append({"role": "user", "content": f"{seed}:{op}"})
            else:
                client.memories.get(rid)
                session.messages(last=5)
        barrier.wait(timeout=60)  # every writer is done: quiescence
        time.sleep(0.3)
        out.put((seed, replica_view(client)))
