"""The in-process search engine keeps its copy of a namespace exact, cheaply.

After other clients write, the copy catches up from the namespace's change log (only the
changed records are read again); when the log was trimmed past the copy, it reloads.
"""

from __future__ import annotations

import time

import rmem
from rmem.embedders import HashEmbedder


def local_client(url: str, namespace: str, **options: object) -> rmem.Client:
    return rmem.Client.from_url(
        url, namespace=namespace, search_engine="local", embedder=HashEmbedder(32), **options
    )


def ids(client: rmem.Client, query: str) -> set[str]:
    return {h.record.id for h in client.memories.search(query, mode="text", k=1000)}


def test_the_copy_catches_up_from_the_change_log(redis_url: str, namespace: str) -> None:
    with local_client(redis_url, namespace) as reader, local_client(redis_url, namespace) as w:
        w.memories.add_many([{"text": f"note {i}", "id": f"n{i}"} for i in range(5)])
        assert ids(reader, "note") == {f"n{i}" for i in range(5)}
        copy = reader.memories._state.local[namespace]
        w.memories.update("n1", text="changed words")
        w.memories.delete("n2")
        w.memories.add("note five", id="n5")
        w.memories.add("short lived note", id="n6", ttl=0.3)
        assert ids(reader, "note") == {"n0", "n3", "n4", "n5", "n6"}
        assert ids(reader, "changed") == {"n1"}
        assert reader.memories._state.local[namespace] is copy  # updated in place, not reloaded
        time.sleep(0.5)
        assert ids(reader, "note") == {"n0", "n3", "n4", "n5"}
        assert reader.memories.count() == 5


def test_a_trimmed_change_log_reloads_the_copy(redis_url: str, namespace: str) -> None:
    with (
        local_client(redis_url, namespace) as reader,
        local_client(redis_url, namespace, change_log_maxlen=100) as w,
    ):
        w.memories.add("the first note", id="first")
        assert ids(reader, "note") == {"first"}
        copy = reader.memories._state.local[namespace]
        for i in range(30):
            w.memories.add_many(
                [{"text": f"bulk note {i}-{j}", "id": f"b{i}-{j}"} for j in range(20)]
            )
        w.memories.delete("first")
        found = ids(reader, "note")
        assert reader.memories._state.local[namespace] is not copy  # reloaded
        assert "first" not in found and len(found) == 600
