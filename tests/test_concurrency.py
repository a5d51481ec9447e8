"""Many writers on one session: nothing lost, nothing doubled, each writer's order kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from pathlib import Path

import rmem

ROOT = Path(__file__).resolve().parent.parent
PER_WRITER = 1000


def _check_history(messages: list[rmem.Message], writers: int, per_writer: int) -> None:
    assert len(messages) == writers * per_writer
    assert len({m.id for m in messages}) == len(messages)
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        seqs[m.name or ""].append(m.metadata["seq"] if m.metadata else -1)
    assert len(seqs) == writers
    for sequence in seqs.values():
        assert sequence == list(range(per_writer))  # each writer's order preserved


def test_eight_threads_append_to_one_session(client: rmem.Client) -> None:
    session = client.session("shared", ttl=600)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(name: str) -> None:
        try:
            start.wait()
            for i in range(PER_WRITER):
                session.append(
                    {"role": "user", "name": name, "content": "x", "metadata": {"seq": i}}
                )
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    _check_history(session.messages(), 8, PER_WRITER)
    info = session.info()
    assert info.message_count == 8 * PER_WRITER
    assert info.revision == 8 * PER_WRITER
    assert info.size_bytes == sum(len(rmem._codec.pack(m.to_dict())) for m in session.messages())


def test_two_processes_append_to_one_session(redis_url: str, namespace: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys, rmem
        name = sys.argv[1]
        with rmem.Client.from_url({redis_url!r}, namespace={namespace!r}) as c:
            s = c.session("shared", ttl=600)
            sys.stdout.write("ready\\n"); sys.stdout.flush()
            sys.stdin.readline()
            for i in range({PER_WRITER}):
                s.append({{"role": "user", "name": name, "content": "x", "metadata": {{"seq": i}}}})
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"p{n}"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for p in procs:  # start both writers at once
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=120) == 0
        p.stdin.close()
        p.stdout.close()
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        s = c.session("shared")
        _check_history(s.messages(), 2, PER_WRITER)
        assert s.info().message_count == 2 * PER_WRITER


def test_async_tasks_append_concurrently(redis_url: str, namespace: str) -> None:
    async def main() -> list[rmem.Message]:
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as c:
            s = c.session("async-shared")

            async def writer(name: str) -> None:
                for i in range(200):
                    await s.append({"role": "user", "name": name, "metadata": {"seq": i}})

            await asyncio.gather(*(writer(f"a{n}") for n in range(8)))
            return await s.messages()

    messages = asyncio.run(main())
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        assert m.metadata is not None
        seqs[m.name or ""].append(m.metadata["seq"])
    assert sorted(seqs) == [f"a{n}" for n in range(8)]
    assert all(v == list(range(200)) for v in seqs.values())


def test_concurrent_pops_never_return_the_same_message(client: rmem.Client) -> None:
    s = client.session("popping")
    s.extend([{"role": "user", "content": str(i)} for i in range(400)])
    popped: list[str] = []
    lock = threading.Lock()

    def popper() -> None:
        while (m := s.pop()) is not None:
            with lock:
                popped.append(m.content)

    threads = [threading.Thread(target=popper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(popped, key=int) == [str(i) for i in range(400)]
    assert s.count() == 0
