"""In-process search: exact vector ranking, BM25, filters, RRF fusion and index maintenance."""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from rmem._search_local import (
    Doc,
    LocalIndex,
    Mode,
    coverage,
    fuse_hybrid,
    fuse_rrf,
    hybrid_depth,
    tokenize,
)

MODES: tuple[Mode, ...] = ("vector", "text", "hybrid")
PUNCTUATION = "@ - | { } ( ) [ ] * \" ' : ; ~ % $ \\"


def doc(
    doc_id: str,
    text: str = "",
    *,
    vector: list[float] | NDArray[np.float32] | None = None,
    tags: tuple[str, ...] = (),
    created_ms: int = 0,
    fields: Mapping[str, str] | None = None,
) -> Doc:
    vec = None if vector is None else np.asarray(vector, dtype=np.float32)
    return Doc(doc_id, text, frozenset(tags), created_ms, dict(fields or {}), vec)


def index_of(*docs: Doc, dim: int | None = None) -> LocalIndex:
    index = LocalIndex(dim)
    for d in docs:
        index.upsert(d)
    return index


def naive_vector_top(
    docs: list[Doc], query: NDArray[np.float32], k: int
) -> list[tuple[str, float]]:
    q = query.astype(np.float64) / np.linalg.norm(query.astype(np.float64))
    scored = []
    for d in docs:
        if d.vector is not None:
            v = d.vector.astype(np.float64)
            scored.append((d.id, float(v @ q / np.linalg.norm(v))))
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:k]


def random_docs(rng: np.random.Generator, n: int, dim: int) -> list[Doc]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "zeta"]
    return [
        doc(
            f"d{i:04d}",
            " ".join(rng.choice(words, size=3)),
            vector=None if i % 7 == 0 else rng.standard_normal(dim).astype(np.float32),
            tags=(f"t{i % 5}",),
            created_ms=i,
            fields={"kind": f"k{i % 3}"},
        )
        for i in range(n)
    ]


# -- tokenize ------------------------------------------------------------------------------


def test_tokenize_lowercases_and_splits_on_non_word_characters() -> None:
    assert tokenize("Hello, World! It's 2 o'clock_now") == [
        "hello",
        "world",
        "it",
        "s",
        "2",
        "o",
        "clock_now",
    ]


def test_tokenize_handles_non_ascii_and_normalises_accents() -> None:
    assert tokenize("Naïve CAFÉ 東京") == ["naïve", "café", "東京"]
    assert tokenize(unicodedata.normalize("NFD", "naïve café")) == ["naïve", "café"]
    full_width = "".join(chr(0xFEE0 + ord(ch)) for ch in "FULL-width")
    assert tokenize(full_width) == ["full", "width"]


def test_tokenize_keeps_combining_marks_inside_words() -> None:
    # Devanagari vowel signs and virama, Hebrew points: marks that plain \w+ would cut at.
    assert tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert tokenize("עִבְרִית") == ["עִבְרִית"]
    # A mark with no word character before it is no token; a variation selector stays inside.
    assert tokenize("\u0301 x\u0301 a\U000e0100b") == ["x\u0301", "a\U000e0100b"]


def test_tokenize_of_punctuation_is_empty() -> None:
    assert tokenize(PUNCTUATION) == []
    assert tokenize("") == []


# -- text / BM25 ---------------------------------------------------------------------------


def bm25_example() -> LocalIndex:
    # N = 3, total length 6, so the average document length is 2.
    return index_of(
        doc("a", "apple banana", tags=("x",)),
        doc("b", "apple apple cherry"),
        doc("c", "cherry"),
    )


def test_bm25_scores_match_hand_computation() -> None:
    index = bm25_example()
    idf_apple = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # ln 1.6
    assert idf_apple == pytest.approx(0.4700036292)
    # a: tf 1, length 2 = average, so the length norm is k1 and the tf part is 2.2 / 2.2.
    # b: tf 2, length 3: norm 1.2 * (0.25 + 0.75 * 1.5) = 1.65.
    hits = index.search(mode="text", k=10, text="apple")
    assert [h[0] for h in hits] == ["b", "a"]
    assert hits[0][1] == pytest.approx(idf_apple * 2 * 2.2 / (2 + 1.65))
    assert hits[1][1] == pytest.approx(idf_apple * 1.0)
    assert [s for _, s in hits] == pytest.approx([0.5665797, 0.4700036])
    # idf and the average length come from the whole index, whatever the filters keep.
    assert index.search(mode="text", k=10, text="apple", tags=["x"]) == [hits[1]]


def test_bm25_sums_over_query_tokens_with_or_semantics() -> None:
    index = bm25_example()
    idf_banana = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    idf_cherry = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    hits = dict(index.search(mode="text", k=10, text="banana cherry"))
    assert hits == pytest.approx(
        {
            "a": idf_banana * 2.2 / (1 + 1.2),
            "b": idf_cherry * 2.2 / (1 + 1.65),
            "c": idf_cherry * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 0.5)),
        }
    )
    # Repeating a query token does not count it twice.
    assert index.search(mode="text", k=10, text="apple APPLE apple") == index.search(
        mode="text", k=10, text="apple"
    )


def test_text_or_semantics_and_unknown_tokens() -> None:
    index = index_of(doc("x", "red car"), doc("y", "blue boat"), doc("z", "green tree"))
    assert sorted(i for i, _ in index.search(mode="text", k=10, text="car boat")) == ["x", "y"]
    assert [i for i, _ in index.search(mode="text", k=10, text="car submarine")] == ["x"]
    assert index.search(mode="text", k=10, text="submarine") == []


def test_text_respects_k_and_orders_ties_by_id() -> None:
    index = index_of(*(doc(f"id{i}", "same words here") for i in (5, 3, 9, 1, 7)))
    hits = index.search(mode="text", k=3, text="words")
    assert [i for i, _ in hits] == ["id1", "id3", "id5"]
    assert len({s for _, s in hits}) == 1


def test_non_ascii_text_matches() -> None:
    index = index_of(doc("u", "naïve café 東京"), doc("v", "plain ascii"))
    for query in ("CAFÉ", "東京", unicodedata.normalize("NFD", "Naïve"), "café?"):
        assert [i for i, _ in index.search(mode="text", k=5, text=query)] == ["u"]


@pytest.mark.parametrize("mode", MODES[1:])
def test_punctuation_queries_never_raise(mode: Mode) -> None:
    index = index_of(doc("a", "a b c", vector=[1.0, 0.0]))
    for query in [PUNCTUATION, *PUNCTUATION.split(), "a* | b -c", '"a" @b:{c}', "(a) ~b %c%"]:
        index.search(mode=mode, k=3, text=query)
    assert index.search(mode=mode, k=3, text=PUNCTUATION) == []
    assert index.search(mode="text", k=3, text="@a:{b}") != []


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_any_query_text_never_raises(query: str) -> None:
    index = index_of(doc("a", "alpha beta"), doc("b", "gamma 東京"))
    hits = index.search(mode="text", k=5, text=query)
    assert {i for i, _ in hits} <= {"a", "b"}


# -- vector --------------------------------------------------------------------------------


def test_vector_matches_naive_brute_force_on_seeded_data() -> None:
    rng = np.random.default_rng(7)
    docs = random_docs(rng, 600, 24)
    index = index_of(*docs)
    for _ in range(20):
        query = rng.standard_normal(24).astype(np.float32)
        for k in (1, 10, 600):
            hits = index.search(mode="vector", k=k, vector=query)
            expected = naive_vector_top(docs, query, k)
            assert [i for i, _ in hits] == [i for i, _ in expected]
            assert [s for _, s in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


# About 11% of rows pass the first filter (scored on a gathered copy) and about 30% the second
# (scored in one pass over every row): both paths of the vector ranking.
@pytest.mark.parametrize("tags", [["t0"], ["t0", "t1", "t2"]], ids=["selective", "loose"])
def test_vector_with_filters_matches_naive(tags: list[str]) -> None:
    rng = np.random.default_rng(11)
    docs = random_docs(rng, 500, 8)
    index = index_of(*docs)
    query = rng.standard_normal(8).astype(np.float32)
    kept = [d for d in docs if d.tags & set(tags) and 100 <= d.created_ms <= 400]
    hits = index.search(mode="vector", k=15, vector=query, tags=tags, since_ms=100, until_ms=400)
    assert [i for i, _ in hits] == [i for i, _ in naive_vector_top(kept, query, 15)]


@given(
    vectors=st.lists(
        st.lists(st.integers(-3, 3), min_size=3, max_size=3).filter(any),
        min_size=1,
        max_size=30,
    ),
    query=st.lists(st.integers(-3, 3), min_size=3, max_size=3).filter(any),
    k=st.integers(1, 35),
)
@settings(max_examples=150, deadline=None)
def test_vector_top_k_is_the_exact_top_k(
    vectors: list[list[int]], query: list[int], k: int
) -> None:
    docs = [doc(f"{i:02d}", vector=[float(x) for x in v]) for i, v in enumerate(vectors)]
    index = index_of(*docs)
    q = np.asarray(query, np.float32)
    hits = index.search(mode="vector", k=k, vector=q)
    expected = naive_vector_top(docs, q, len(docs))
    assert len(hits) == min(k, len(docs))
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    # Exact up to float32 rounding: nothing left out scores clearly above what was returned.
    naive = dict(expected)
    floor = min(naive[i] for i, _ in hits)
    assert all(naive[i] <= floor + 1e-6 for i in naive if i not in dict(hits))
    for (i1, s1), (i2, s2) in itertools.pairwise(hits):
        assert s1 > s2 or i1 < i2


def test_vector_ties_ordered_by_id() -> None:
    index = index_of(
        doc("c", vector=[1.0, 0.0]),
        doc("a", vector=[2.0, 0.0]),
        doc("d", vector=[0.0, 1.0]),
        doc("b", vector=[1.0, 0.0]),
    )
    assert index.search(mode="vector", k=2, vector=np.array([3.0, 0.0])) == [
        ("a", 1.0),
        ("b", 1.0),
    ]


def test_vector_skips_docs_without_vectors() -> None:
    index = index_of(doc("t", "text only"), doc("v", "text", vector=[0.0, 1.0]))
    assert [i for i, _ in index.search(mode="vector", k=5, vector=np.array([0.0, 1.0]))] == ["v"]


def test_cosine_range_and_sign() -> None:
    index = index_of(
        doc("same", vector=[1, 1]), doc("opp", vector=[-2, -2]), doc("ortho", vector=[1, -1])
    )
    hits = index.search(mode="vector", k=3, vector=np.array([5.0, 5.0]))
    assert [i for i, _ in hits] == ["same", "ortho", "opp"]
    assert dict(hits) == pytest.approx({"same": 1.0, "ortho": 0.0, "opp": -1.0})


def test_dim_is_fixed_by_first_vector_and_mismatch_raises() -> None:
    index = LocalIndex()
    index.upsert(doc("no-vector", "text"))
    assert index.dim is None
    # A query vector does not fix the dimension.
    assert index.search(mode="vector", k=1, vector=np.ones(5, np.float32)) == []
    assert index.dim is None
    index.upsert(doc("a", vector=[1.0, 0.0, 0.0]))
    assert index.dim == 3
    with pytest.raises(ValueError, match="dimension"):
        index.upsert(doc("b", "new", vector=[1.0, 0.0]))
    with pytest.raises(ValueError, match="dimension"):
        index.upsert(doc("a", "replacement", vector=[1.0, 0.0]))
    with pytest.raises(ValueError, match="dimension"):
        index.search(mode="vector", k=1, vector=np.ones(4, np.float32))
    # Failed upserts changed nothing.
    assert index.ids() == ["a", "no-vector"]
    assert index.search(mode="text", k=5, text="new replacement") == []
    assert index.search(mode="vector", k=5, vector=np.ones(3))[0][0] == "a"


def test_declared_dim_checked_even_when_empty() -> None:
    index = LocalIndex(dim=4)
    with pytest.raises(ValueError, match="dimension"):
        index.search(mode="vector", k=1, vector=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="dimension"):
        index.upsert(doc("a", vector=[1.0, 2.0]))
    with pytest.raises(ValueError, match="dim"):
        LocalIndex(dim=0)


@pytest.mark.parametrize(
    "bad", [[0.0, 0.0], [math.nan, 1.0], [math.inf, 1.0], [[1.0, 0.0]]], ids=str
)
def test_degenerate_vectors_raise(bad: list[float]) -> None:
    index = index_of(doc("a", vector=[1.0, 0.0]))
    with pytest.raises(ValueError, match="vector"):
        index.upsert(Doc("b", "", frozenset(), 0, {}, np.asarray(bad, np.float32)))
    with pytest.raises(ValueError, match="vector"):
        index.search(mode="vector", k=1, vector=np.asarray(bad, np.float32))
    assert index.ids() == ["a"]


def test_stored_vector_is_a_copy() -> None:
    vec = np.array([1.0, 0.0], np.float32)
    index = index_of(doc("a", vector=vec), doc("b", vector=[0.0, 1.0]))
    vec[:] = [0.0, 1.0]
    assert index.search(mode="vector", k=1, vector=np.array([1.0, 0.0]))[0][0] == "a"


# -- filters -------------------------------------------------------------------------------


def filter_example() -> LocalIndex:
    return index_of(
        doc("a", "note", vector=[1, 0], tags=("work",), created_ms=100, fields={"lang": "en"}),
        doc("b", "note", vector=[1, 0], tags=("home",), created_ms=200, fields={"lang": "fr"}),
        doc(
            "c",
            "note",
            vector=[1, 0],
            tags=("work", "x"),
            created_ms=300,
            fields={"lang": "fr", "src": "chat"},
        ),
        doc("d", "note", vector=[1, 0], created_ms=400),
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "abcd"),
        ({"tags": []}, "abcd"),
        ({"tags": ["work"]}, "ac"),
        ({"tags": ["home", "x"]}, "bc"),
        ({"tags": ["nope"]}, ""),
        ({"since_ms": 200}, "bcd"),
        ({"until_ms": 300}, "abc"),
        ({"since_ms": 200, "until_ms": 300}, "bc"),
        ({"since_ms": 300, "until_ms": 200}, ""),
        ({"where": {}}, "abcd"),
        ({"where": {"lang": "fr"}}, "bc"),
        ({"where": {"lang": "fr", "src": "chat"}}, "c"),
        ({"where": {"lang": "de"}}, ""),
        ({"where": {"missing": "x"}}, ""),
        ({"tags": ["work", "home"], "since_ms": 150, "where": {"lang": "fr"}}, "bc"),
        ({"tags": ["work"], "until_ms": 250, "where": {"lang": "en"}}, "a"),
    ],
)
def test_filters(mode: Mode, filters: dict[str, Any], expected: str) -> None:
    hits = filter_example().search(
        mode=mode,
        k=10,
        text="note",
        vector=np.array([1.0, 0.0]),
        **filters,
    )
    assert "".join(sorted(i for i, _ in hits)) == expected


def test_tags_as_a_single_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="tags"):
        filter_example().search(mode="text", k=1, text="note", tags="work")


# -- maintenance ---------------------------------------------------------------------------


def test_upsert_replaces_text_vector_tags_and_fields() -> None:
    index = index_of(
        doc("a", "old words", vector=[1, 0], tags=("t1",), created_ms=1, fields={"f": "1"}),
        doc("b", "other", vector=[0, 1]),
    )
    index.upsert(
        doc("a", "fresh text", vector=[0, 1], tags=("t2",), created_ms=5, fields={"f": "2"})
    )
    assert len(index) == 2
    assert index.search(mode="text", k=5, text="old words") == []
    assert [i for i, _ in index.search(mode="text", k=5, text="fresh")] == ["a"]
    assert index.search(mode="vector", k=5, vector=np.array([0.0, 1.0])) == [
        ("a", 1.0),
        ("b", 1.0),
    ]
    assert index.search(mode="text", k=5, text="fresh", tags=["t1"]) == []
    assert index.search(mode="text", k=5, text="fresh", tags=["t2"]) != []
    assert index.search(mode="text", k=5, text="fresh", where={"f": "1"}) == []
    assert index.search(mode="text", k=5, text="fresh", since_ms=5) != []
    # Replacing with no vector takes the record out of vector search.
    index.upsert(doc("a", "fresh text"))
    assert [i for i, _ in index.search(mode="vector", k=5, vector=np.array([0.0, 1.0]))] == ["b"]


def test_remove_then_search_never_returns_it() -> None:
    docs = [doc(f"d{i}", f"common word{i}", vector=[1.0, float(i)], tags=("t",)) for i in range(6)]
    index = index_of(*docs)
    assert index.remove("d0") is True  # the first row: the last row moves into it
    assert index.remove("d5") is True  # now the last row
    assert index.remove("d0") is False
    assert index.remove("never") is False
    assert "d0" not in index and "d3" in index and 3 not in index
    assert index.ids() == ["d1", "d2", "d3", "d4"]
    for mode in MODES:
        hits = index.search(
            mode=mode, k=10, text="common word0 word5", vector=np.array([1.0, 0.0]), tags=["t"]
        )
        assert {i for i, _ in hits} == {"d1", "d2", "d3", "d4"}
    for d in docs[1:5]:
        index.remove(d.id)
    assert len(index) == 0
    assert index.search(mode="hybrid", k=3, text="common", vector=np.array([1.0, 0.0])) == []


def test_clear_empties_and_keeps_dim() -> None:
    index = index_of(doc("a", "x", vector=[1.0, 2.0]))
    index.clear()
    assert len(index) == 0 and index.ids() == [] and index.dim == 2
    assert index.search(mode="text", k=1, text="x") == []
    index.upsert(doc("a", "y", vector=[2.0, 1.0]))
    assert index.search(mode="text", k=1, text="y")[0][0] == "a"


OPS = st.lists(
    st.tuples(
        st.sampled_from(["upsert", "upsert", "remove"]),
        st.integers(0, 11),  # which id
        st.lists(st.sampled_from(["ant", "bee", "cat", "dog"]), max_size=4),
        st.booleans(),  # has a vector
        st.integers(0, 2**32 - 1),  # vector seed
    ),
    max_size=60,
)


@given(OPS)
@settings(max_examples=100, deadline=None)
def test_any_history_searches_like_a_fresh_index(
    ops: list[tuple[str, int, list[str], bool, int]],
) -> None:
    query = np.random.default_rng(0).standard_normal(4).astype(np.float32)
    filters: list[dict[str, Any]] = [
        {},
        {"tags": ["ant", "cat"]},
        {"since_ms": 3, "until_ms": 8},
        {"where": {"last": "dog"}},
    ]

    def every_search(index: LocalIndex) -> list[list[tuple[str, float]]]:
        return [
            index.search(mode=mode, k=5, text="ant dog", vector=query, **f)
            for f in filters
            for mode in MODES
        ]

    index = LocalIndex(4)
    live: dict[str, Doc] = {}
    for op, n, words, has_vector, seed in ops:
        doc_id = f"id{n:02d}"
        if op == "remove":
            assert index.remove(doc_id) is (live.pop(doc_id, None) is not None)
        else:
            vec = np.random.default_rng(seed).standard_normal(4).astype(np.float32)
            live[doc_id] = doc(
                doc_id,
                " ".join(words),
                vector=vec if has_vector else None,
                tags=tuple(words[:1]),
                created_ms=n,
                fields={"last": words[-1]} if words else {},
            )
            index.upsert(live[doc_id])
        every_search(index)  # queries between writes: cached lookups must follow the writes
    fresh = index_of(*live.values(), dim=4)
    assert index.ids() == fresh.ids() == sorted(live)
    assert len(index) == len(live)
    for got, want in zip(every_search(index), every_search(fresh), strict=True):
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want])
    assert [i for i, _ in index.search(mode="vector", k=20, vector=query)] == [
        i for i, _ in naive_vector_top(list(live.values()), query, 20)
    ]


# -- fusion and hybrid ---------------------------------------------------------------------


def test_fuse_rrf_hand_example() -> None:
    fused = fuse_rrf([["a", "b", "c"], ["c", "a", "d"]], c=60)
    expected = {
        "a": 1 / 61 + 1 / 62,
        "b": 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "d": 1 / 63,
    }
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert dict(fused) == pytest.approx(expected)


def test_fuse_rrf_ties_by_id_duplicates_once_and_bad_c() -> None:
    assert fuse_rrf([["y", "x"], ["x", "y"]]) == [("x", 1 / 61 + 1 / 62), ("y", 1 / 61 + 1 / 62)]
    assert fuse_rrf([["b"], ["a"]]) == [("a", 1 / 61), ("b", 1 / 61)]
    assert fuse_rrf([["a", "a", "b"]], c=0) == [("a", 1.0), ("b", 1 / 3)]
    assert fuse_rrf([]) == []
    with pytest.raises(ValueError, match="c must"):
        fuse_rrf([["a"]], c=-1)


def test_hybrid_depth() -> None:
    assert [hybrid_depth(k) for k in (1, 10, 11, 100)] == [40, 40, 44, 400]
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="k must"):
            hybrid_depth(bad)  # type: ignore[arg-type]


def hybrid_example() -> LocalIndex:
    return index_of(
        doc("a", "apple pie", vector=[1.0, 0.0]),
        doc("b", "apple apple", vector=[0.0, 1.0]),
        doc("c", "banana", vector=[0.8, 0.6]),
        doc("d", "apple tart"),
    )


def test_hybrid_fuses_vector_and_text_rankings() -> None:
    index = hybrid_example()
    query = np.array([1.0, 0.0])
    by_vector = [i for i, _ in index.search(mode="vector", k=10, vector=query)]
    by_text = [i for i, _ in index.search(mode="text", k=10, text="apple")]
    assert by_vector == ["a", "c", "b"]
    assert by_text == ["b", "a", "d"]
    hits = index.search(mode="hybrid", k=3, text="apple", vector=query)
    assert hits == fuse_rrf([by_vector, by_text])[:3]
    assert [i for i, _ in hits] == ["a", "b", "c"]
    assert hits[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_hybrid_with_only_one_ranking_uses_rrf_scores() -> None:
    index = hybrid_example()
    text_only = index.search(mode="hybrid", k=2, text="apple")
    assert text_only == [("b", 1 / 61), ("a", 1 / 62)]
    vector_only = index.search(mode="hybrid", k=2, vector=np.array([1.0, 0.0]))
    assert vector_only == [("a", 1 / 61), ("c", 1 / 62)]
    # A text without tokens contributes nothing; the vector ranking remains.
    assert index.search(mode="hybrid", k=2, text="?!", vector=np.array([1.0, 0.0])) == vector_only
    assert index.search(mode="hybrid", k=2, text="?!") == []


def test_hybrid_depth_bounds_each_ranking() -> None:
    # t00 has the most occurrences of "word" (text rank 1), t40 has text rank 41 and is the
    # only record with a vector (vector rank 1).
    docs = [
        doc(f"t{i:02d}", "word " * (45 - i), vector=[1.0, 0.0] if i == 40 else None)
        for i in range(45)
    ]
    index = index_of(*docs)
    query = np.array([1.0, 0.0])
    assert [i for i, _ in index.search(mode="text", k=45, text="word")][:2] == ["t00", "t01"]
    # k = 10: depth 40, so t40 brings only its vector rank and ties t00; the id decides.
    hits = dict(index.search(mode="hybrid", k=10, text="word", vector=query))
    assert hits["t00"] == hits["t40"] == 1 / 61
    assert index.search(mode="hybrid", k=1, text="word", vector=query) == [("t00", 1 / 61)]
    # k = 11: depth 44, so t40's text rank counts too.
    hits_11 = index.search(mode="hybrid", k=11, text="word", vector=query)
    assert hits_11[0] == ("t40", 1 / 61 + 1 / (60 + 41))


def test_hybrid_fusion_can_promote_a_record_no_single_ranking_puts_first() -> None:
    index = index_of(
        doc("a", "zebra", vector=[1.0, 0.0]),
        doc("b", "apple apple apple"),
        doc("both", "apple zebra", vector=[0.9, 0.5]),
    )
    by_vector = index.search(mode="vector", k=1, vector=np.array([1.0, 0.1]))
    by_text = index.search(mode="text", k=1, text="apple")
    assert (by_vector[0][0], by_text[0][0]) == ("a", "b")
    hits = index.search(mode="hybrid", k=1, text="apple", vector=np.array([1.0, 0.1]))
    assert hits == [("both", 2 / 62)]


# -- arguments and empty index -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_empty_index_returns_nothing(mode: Mode) -> None:
    hits = LocalIndex().search(mode=mode, k=5, text="anything", vector=np.ones(3))
    assert hits == []
    assert LocalIndex(3).search(mode=mode, k=5, text="x", vector=np.ones(3), tags=["t"]) == []


def test_argument_errors() -> None:
    index = hybrid_example()
    with pytest.raises(ValueError, match="k must"):
        index.search(mode="text", k=0, text="apple")
    with pytest.raises(ValueError, match="mode"):
        index.search(mode="fuzzy", k=1, text="apple")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query vector"):
        index.search(mode="vector", k=1, text="apple")
    with pytest.raises(ValueError, match="query text"):
        index.search(mode="text", k=1, vector=np.ones(2))
    with pytest.raises(ValueError, match="hybrid"):
        index.search(mode="hybrid", k=1)
    with pytest.raises(ValueError, match="1-D"):
        index.search(mode="vector", k=1, vector=np.ones((1, 2)))


def test_a_mode_ignores_the_query_part_it_does_not_use() -> None:
    index = hybrid_example()
    bad_vector = np.ones(7)
    assert index.search(mode="text", k=1, text="banana", vector=bad_vector) == [
        index.search(mode="text", k=1, text="banana")[0]
    ]
    assert index.search(mode="vector", k=1, text="banana", vector=np.array([0.0, 1.0]))[0][0] == "b"


def test_coverage_is_the_share_of_query_words_a_record_holds() -> None:
    assert coverage({"a", "b", "c", "d"}, ["b", "d", "x"]) == 0.5
    assert coverage({"a"}, ["a"]) == 1.0
    assert coverage(set(), ["a"]) == 0.0


def test_fuse_hybrid_weights_text_hits_by_coverage() -> None:
    # "k" holds every query word: it counts like a vector rank of the same position.
    fused = dict(fuse_hybrid(["v1", "v2"], [("k", 1.0), ("v2", 0.5)], c=60))
    assert fused["k"] == pytest.approx(1 / 61)
    assert fused["v1"] == pytest.approx(1 / 61)
    assert fused["v2"] == pytest.approx(1 / 62 + 0.5**4 / 62)
    # A text hit sharing a quarter of a long question's words barely moves the vector order.
    order = [i for i, _ in fuse_hybrid(["a", "b", "c"], [("c", 0.25), ("z", 0.25)])]
    assert order == ["a", "b", "c", "z"]
    assert fuse_hybrid([], []) == []


def test_hybrid_search_prefers_full_keyword_matches_over_word_overlap() -> None:
    index = LocalIndex()
    index.upsert(doc("exact", "the ZipImportError exception", vector=[1.0, 0.0]))
    index.upsert(doc("near", "a thing that is a thing", vector=[0.0, 1.0]))
    # Every query word matched: the keyword hit outranks the nearest vector.
    hits = index.search(mode="hybrid", k=2, text="ZipImportError exception", vector=[0.1, 1.0])
    assert [i for i, _ in hits] == ["exact", "near"]
    # Two small words of a long question matched: the vector order stands.
    query = "is there a way to list things"
    hits = index.search(mode="hybrid", k=2, text=query, vector=[1.0, 0.1])
    assert [i for i, _ in hits] == ["exact", "near"]
    hits = index.search(mode="hybrid", k=2, text=query, vector=[0.1, 1.0])
    assert [i for i, _ in hits] == ["near", "exact"]
