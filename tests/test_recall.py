"""Search quality with the offline all-MiniLM-L6-v2 model on 3,000 real sentences.

- HNSW (RediSearch, rmem's default parameters) against exact brute force: recall@10 >= 0.95.
- On the checked-in labelled query set (tests/data/queries.json), hybrid recall@5 is at least
  the better of text and vector.

The corpus and queries are described in tests/data/README.md. Embedding the corpus takes most
of this module's time (about a minute on 2 cores).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rmem
from rmem.embedders import MiniLMEmbedder

DATA = Path(__file__).resolve().parent / "data"
SENTENCES = (DATA / "sentences.txt").read_text(encoding="utf-8").splitlines()
QUERIES = json.loads((DATA / "queries.json").read_text(encoding="utf-8"))

pytest.importorskip("sentence_transformers", reason="needs the embed extra")


@pytest.fixture(scope="module")
def corpus(redis_url: str) -> Iterator[tuple[Any, np.ndarray]]:
    """A namespace holding the corpus (ids are line numbers), embedded by the client."""
    embedder = MiniLMEmbedder()
    with rmem.Client.from_url(redis_url, namespace="recall-corpus", embedder=embedder) as c:
        c.memories.forget(all=True)
        records = c.memories.add_many(
            [{"text": t, "id": f"{i:05d}"} for i, t in enumerate(SENTENCES)]
        )
        vectors = np.array([r.vector for r in records], dtype=np.float32)
        yield c, vectors
        c.memories.forget(all=True)


def test_hnsw_recall_at_10_against_exact_search(corpus: tuple[Any, np.ndarray]) -> None:
    client, vectors = corpus
    assert client.health().search_engine == "redisearch"
    queries = client.embedder.embed([q["query"] for q in QUERIES])
    queries += [vectors[i].tolist() for i in range(0, len(SENTENCES), 19)]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    recalls = []
    for query in queries:
        q = np.asarray(query, dtype=np.float32)
        exact = set(np.argsort(-(unit @ (q / np.linalg.norm(q))), kind="stable")[:10].tolist())
        found = {int(h.record.id) for h in client.memories.search(vector=query, mode="vector")}
        recalls.append(len(found & exact) / 10)
    print(f"HNSW recall@10 over {len(queries)} queries: {np.mean(recalls):.3f}")
    assert len(queries) >= 200
    assert np.mean(recalls) >= 0.95


def test_hybrid_recall_at_5_is_at_least_the_better_of_text_and_vector(
    corpus: tuple[Any, np.ndarray],
) -> None:
    client, _ = corpus
    recall: dict[str, list[float]] = {"text": [], "vector": [], "hybrid": []}
    for q in QUERIES:
        relevant = set(q["relevant"])
        for mode, scores in recall.items():
            top = {int(h.record.id) for h in client.memories.search(q["query"], mode=mode, k=5)}
            scores.append(len(top & relevant) / len(relevant))
    means = {mode: float(np.mean(scores)) for mode, scores in recall.items()}
    print("recall@5 on the labelled set:", {m: round(v, 3) for m, v in means.items()})
    assert means["text"] > 0.3 and means["vector"] > 0.5  # both legs do real work
    assert means["hybrid"] >= max(means["text"], means["vector"])
