"""In-process search: exact vector, BM25 text and hybrid ranking, with no I/O.

Used where the server cannot search (plain Redis without the query engine, the local fallback
and ``memory://``), with the rules the RediSearch path follows too:

- Filters apply before ranking: ``tags`` matches records carrying any of the given tags,
  ``since_ms <= created_ms <= until_ms`` (both inclusive, each optional) and ``where`` requires
  every given field to be equal. Empty filters filter nothing.
- ``vector`` ranks records that have a vector by cosine similarity, in [-1, 1].
- ``text`` ranks records holding at least one query token (OR) by BM25 (k1 1.2, b 0.75,
  ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))`` over the whole index).
- ``hybrid`` fuses the two rankings, each taken to :func:`hybrid_depth`, with
  :func:`fuse_hybrid` (reciprocal rank fusion, each text hit weighted by the share of the
  query's words it contains); with only one ranking available the scores are still RRF scores.
- Equal scores are ordered by id, ascending, so results never depend on insertion order.

Vectors are exact brute force: one contiguous float32 matrix of unit rows, so a query is one
matrix-vector product. Every record owns one row in the row-keyed arrays (the matrix holds a
zero row when the record has no vector); removal moves the last row into the hole so the
arrays stay dense. The index is not thread-safe: its owner serialises calls.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Doc",
    "LocalIndex",
    "Mode",
    "coverage",
    "fuse_hybrid",
    "fuse_rrf",
    "hybrid_depth",
    "tokenize",
]

Mode = Literal["vector", "text", "hybrid"]

BM25_K1 = 1.2
BM25_B = 0.75
RRF_C = 60
_MIN_CAPACITY = 1024
# Below this share of rows, scoring a gathered copy of the candidate rows reads less memory
# than one pass over the whole matrix (a full pass is memory-bound: ~150 MB at 100k x 384).
_GATHER_SHARE = 0.25

_K = TypeVar("_K")
_Hits = list[tuple[str, float]]  # (id, score), best first
_Mask = NDArray[np.bool_]
_Rows = NDArray[np.intp]
_MODES = ("vector", "text", "hybrid")


@dataclass(frozen=True, slots=True, eq=False)
class Doc:
    """One record as the index sees it.

    ``eq=False``: comparing dataclasses that hold arrays raises, so identity is the equality.

    Attributes:
        id: the record id; ties between equal scores are broken by it.
        text: the text matched by ``text`` and ``hybrid`` searches.
        tags: the record's tags.
        created_ms: creation time, epoch milliseconds.
        fields: declared metadata fields (values already strings) for ``where`` equality.
        vector: a 1-D float vector of the index dimension, or None.
    """

    id: str
    text: str
    tags: frozenset[str]
    created_ms: int
    fields: Mapping[str, str]
    vector: NDArray[np.floating] | None


def tokenize(text: str) -> list[str]:
    """Split text into lowercase word tokens, in order, repeats kept.

    A token is a unicode word character (``\\w``) followed by word characters and combining
    marks: ``\\w`` alone leaves out marks, which would cut words of scripts that write vowels
    as marks (Devanagari, pointed Hebrew) into pieces. The text is NFKC-normalised first, so
    composed and decomposed accents ("é" as one code point or two) and full-width forms give
    the same tokens. No stemming and no stop words. One-character tokens are kept: dropping
    them would lose CJK words, digits and initials, and BM25's idf already makes frequent
    ones ("a") count for little.
    """
    return _token_re().findall(unicodedata.normalize("NFKC", text).lower())


@functools.cache
def _token_re() -> re.Pattern[str]:
    # Built on first use, not at import: listing the marks scans 128k code points (~20 ms).
    # Planes 0 and 1 hold every script's marks; plane 14 adds the variation selectors. The
    # marks go in as ranges: a class of 2,000 single characters makes matching 4x slower.
    category = unicodedata.category
    ranges: list[list[int]] = []
    for code in range(0x20000):
        if category(chr(code)).startswith("M"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    ranges.append([0xE0100, 0xE01EF])
    marks = "".join(f"{chr(first)}-{chr(last)}" for first, last in ranges)  # none is ASCII
    return re.compile(rf"\w[\w{marks}]*")


def fuse_rrf(rankings: Sequence[Sequence[str]], *, c: int = RRF_C) -> list[tuple[str, float]]:
    """Fuse rankings by reciprocal rank: ``score(id) = sum of 1 / (c + rank)``, rank from 1.

    An id repeated within one ranking counts once, at its first (best) rank.

    Returns:
        Every id with its fused score, by score descending, then id ascending.

    Raises:
        ValueError: ``c`` is negative.
    """
    if c < 0:
        raise ValueError(f"c must be >= 0, got {c}")
    scores: dict[str, float] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, doc_id in enumerate(ranking, start=1):
            if doc_id not in seen:
                seen.add(doc_id)
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (c + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


COVERAGE_POWER = 4


def coverage(query_tokens: Collection[str], doc_tokens: Collection[str]) -> float:
    """The share of the query's distinct words that a record contains, in [0, 1]."""
    wanted = set(query_tokens)
    if not wanted:
        return 0.0
    return len(wanted.intersection(doc_tokens)) / len(wanted)


def fuse_hybrid(
    vector_ids: Sequence[str], text_hits: Sequence[tuple[str, float]], *, c: int = RRF_C
) -> list[tuple[str, float]]:
    """Fuse a vector ranking and a text ranking for hybrid search.

    Reciprocal rank fusion, except that a text hit adds ``coverage ** 4 / (c + rank)``, where
    ``coverage`` (given with each hit) is the share of the query's words the record contains.
    A full keyword match counts as much as a vector rank; a record that shares only a few
    words of a long natural-language question (often just "a", "is", "the") counts for little.
    With plain RRF those word-overlap hits outvoted the vector ranking on paraphrased
    questions, and hybrid recall fell below vector recall (docs/decisions.md, #17).

    Returns:
        Every id with its fused score, by score descending, then id ascending.
    """
    scores: dict[str, float] = {}
    for rank, doc_id in enumerate(dict.fromkeys(vector_ids), start=1):
        scores[doc_id] = 1.0 / (c + rank)
    seen: set[str] = set()
    rank = 0
    for doc_id, share in text_hits:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        rank += 1
        scores[doc_id] = scores.get(doc_id, 0.0) + share**COVERAGE_POWER / (c + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def hybrid_depth(k: int) -> int:
    """How many candidates each ranking contributes to a hybrid fusion: ``max(4 * k, 40)``.

    Raises:
        ValueError: ``k`` is not an int >= 1.
    """
    _check_k(k)
    return max(4 * k, 40)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


class _Inverted(Generic[_K]):
    """An inverted index, key -> {row: count}, serving each key's rows as cached arrays.

    The arrays of a key are built on first use and dropped when the key's rows change:
    queries repeat far more often than one key's rows change, so a query costs numpy time,
    not a walk over a Python dict.
    """

    __slots__ = ("_arrays", "_rows")

    def __init__(self) -> None:
        self._rows: dict[_K, dict[int, int]] = {}
        self._arrays: dict[_K, tuple[_Rows, NDArray[np.float64]]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, key: _K, row: int, count: int = 1) -> None:
        self._rows.setdefault(key, {})[row] = count
        self._arrays.pop(key, None)

    def discard(self, key: _K, row: int) -> None:
        rows = self._rows[key]
        del rows[row]
        if not rows:
            del self._rows[key]
        self._arrays.pop(key, None)

    def arrays(self, key: _K) -> tuple[_Rows, NDArray[np.float64]]:
        """The rows holding ``key`` and its count in each (empty for an unknown key)."""
        arrays = self._arrays.get(key)
        if arrays is None:
            rows = self._rows.get(key, {})
            arrays = (
                np.fromiter(rows.keys(), np.intp, len(rows)),
                np.fromiter(rows.values(), np.float64, len(rows)),
            )
            if rows:  # never cache unknown keys: arbitrary query words would pile up
                self._arrays[key] = arrays
        return arrays


class LocalIndex:
    """An in-memory index of :class:`Doc` records: vector, text and hybrid search.

    Args:
        dim: the vector dimension; None fixes it at the first vector upserted. It stays fixed,
            through :meth:`clear` too, as a server index's schema does.
    """

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        self._dim = dim
        self.clear()

    def clear(self) -> None:
        """Remove every record (the dimension stays)."""
        self._docs: list[Doc] = []  # row -> doc
        self._tfs: list[Counter[str]] = []  # row -> token counts
        self._row: dict[str, int] = {}  # id -> row
        self._postings: _Inverted[str] = _Inverted()  # token -> {row: term frequency}
        self._tags: _Inverted[str] = _Inverted()
        self._fields: _Inverted[tuple[str, str]] = _Inverted()
        self._total_len = 0
        self._created: NDArray[np.int64] = np.zeros(0, np.int64)
        self._has_vec: _Mask = np.zeros(0, np.bool_)
        self._doc_len: NDArray[np.float64] = np.zeros(0, np.float64)
        self._matrix: NDArray[np.float32] | None = None

    @property
    def dim(self) -> int | None:
        """The vector dimension, or None while no vector has fixed it."""
        return self._dim

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._row

    def ids(self) -> list[str]:
        """Every record id, ascending."""
        return sorted(self._row)

    def upsert(self, doc: Doc) -> None:
        """Insert ``doc``, or replace the record with its id (text, tags, fields and vector).

        Raises:
            ValueError: the vector is not 1-D, not of the index dimension, zero or not finite
                (cosine is undefined); the index is left unchanged.
        """
        unit = None if doc.vector is None else self._unit(doc.vector, fix_dim=True)
        row = self._row.get(doc.id)
        if row is None:
            row = self._row[doc.id] = len(self._docs)
            self._docs.append(doc)
            self._tfs.append(Counter())
        else:
            self._unindex(row)
        self._reserve(len(self._docs))  # also allocates the matrix once a vector fixed the dim
        # Keep the doc without its vector: the matrix holds the vector, and holding the
        # caller's array too would double the index's largest cost.
        self._index(row, replace(doc, vector=None), Counter(tokenize(doc.text)), unit)

    def remove(self, doc_id: str) -> bool:
        """Remove the record ``doc_id``; return whether it was there."""
        row = self._row.pop(doc_id, None)
        if row is None:
            return False
        self._unindex(row)
        last = len(self._docs) - 1
        if row != last:
            # Move the last record into the hole so every row-keyed array stays dense.
            moved, tfs = self._docs[last], self._tfs[last]
            vec = None
            if self._matrix is not None and self._has_vec[last]:
                vec = self._matrix[last].copy()
            self._unindex(last)
            self._row[moved.id] = row
            self._index(row, moved, tfs, vec)
        self._docs.pop()
        self._tfs.pop()
        return True

    def search(
        self,
        *,
        mode: Mode,
        k: int,
        text: str | None = None,
        vector: NDArray[np.floating] | None = None,
        tags: Collection[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[tuple[str, float]]:
        """Return up to ``k`` ``(id, score)`` pairs, best first, equal scores by id ascending.

        Args:
            mode: "vector" (cosine), "text" (BM25) or "hybrid" (:func:`fuse_hybrid`).
            k: how many results at most.
            text: the query text ("text" and "hybrid"); a text without tokens matches nothing.
            vector: the query vector ("vector" and "hybrid").
            tags: keep records carrying any of these tags.
            since_ms, until_ms: keep records created in this range, both ends inclusive.
            where: keep records whose fields equal every one of these.

        Raises:
            ValueError: an unknown mode; ``k`` not an int >= 1; "vector" without a vector,
                "text" without text, "hybrid" with neither; ``tags`` given as a str; a query
                vector that is not 1-D, finite, non-zero and of the index dimension.
        """
        _check_k(k)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if isinstance(tags, str):
            raise ValueError("tags must be a collection of tags, not a str")
        if mode == "vector" and vector is None:
            raise ValueError("vector search needs a query vector")
        if mode == "text" and text is None:
            raise ValueError("text search needs a query text")
        if mode == "hybrid" and vector is None and text is None:
            raise ValueError("hybrid search needs a query text, a query vector, or both")
        # Only what the mode uses is validated: a text search ignores a vector, and so on.
        unit = None if vector is None or mode == "text" else self._unit(vector, fix_dim=False)
        tokens = [] if text is None or mode == "vector" else sorted(set(tokenize(text)))
        if not self._docs:
            return []
        mask = self._filter_mask(tags, since_ms, until_ms, where)
        if mode == "vector":
            return self._vector_rank(unit, mask, k)
        if mode == "text":
            return self._text_rank(tokens, mask, k)
        depth = hybrid_depth(k)
        by_vector = self._vector_rank(unit, mask, depth)
        by_text = self._text_rank(tokens, mask, depth)
        text_hits = [
            (doc_id, coverage(tokens, self._tfs[self._row[doc_id]])) for doc_id, _ in by_text
        ]
        return fuse_hybrid([doc_id for doc_id, _ in by_vector], text_hits)[:k]

    def _unit(self, vector: NDArray[np.floating], *, fix_dim: bool) -> NDArray[np.float32]:
        """Validate ``vector`` and return it as a unit float32 vector.

        ``fix_dim``: an upserted vector fixes an unset dimension; a query vector does not.
        """
        v = np.asarray(vector, dtype=np.float64)  # float64 norm: float32 overflows at ~1e19
        if v.ndim != 1:
            raise ValueError(f"a vector must be 1-D, got shape {v.shape}")
        if self._dim is not None and v.shape[0] != self._dim:
            raise ValueError(f"vector has dimension {v.shape[0]}; the index has {self._dim}")
        norm = float(np.linalg.norm(v))
        if not math.isfinite(norm) or norm == 0.0:
            raise ValueError("a vector must be finite and non-zero (cosine is undefined)")
        if fix_dim and self._dim is None:
            self._dim = v.shape[0]
        return (v / norm).astype(np.float32)

    def _reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows, growing geometrically so n upserts copy O(n) in all.

        Rows past ``len(self)`` hold leftovers (np.resize repeats data): every read slices
        ``[:n]`` and :meth:`_index` writes every array of a row before it is read.
        """
        cap = self._created.shape[0]
        if rows > cap:
            cap = max(rows, 2 * cap, _MIN_CAPACITY)
            self._created = np.resize(self._created, cap)
            self._has_vec = np.resize(self._has_vec, cap)
            self._doc_len = np.resize(self._doc_len, cap)
        if self._dim is not None and (self._matrix is None or self._matrix.shape[0] < cap):
            old = np.zeros((0, self._dim), np.float32) if self._matrix is None else self._matrix
            self._matrix = np.resize(old, (cap, self._dim))

    def _index(
        self, row: int, doc: Doc, tfs: Counter[str], unit: NDArray[np.float32] | None
    ) -> None:
        """Write ``doc`` into ``row`` of every structure (the row holds nothing indexed)."""
        self._docs[row], self._tfs[row] = doc, tfs
        for token, tf in tfs.items():
            self._postings.add(token, row, tf)
        for tag in doc.tags:
            self._tags.add(tag, row)
        for pair in doc.fields.items():
            self._fields.add(pair, row)
        length = tfs.total()
        self._total_len += length
        self._doc_len[row] = length
        self._created[row] = doc.created_ms
        self._has_vec[row] = unit is not None
        if self._matrix is not None:
            self._matrix[row] = 0.0 if unit is None else unit

    def _unindex(self, row: int) -> None:
        """Take the record in ``row`` out of the postings, tag and field sets and totals."""
        doc = self._docs[row]
        for token in self._tfs[row]:
            self._postings.discard(token, row)
        for tag in doc.tags:
            self._tags.discard(tag, row)
        for pair in doc.fields.items():
            self._fields.discard(pair, row)
        self._total_len -= int(self._doc_len[row])

    def _filter_mask(
        self,
        tags: Collection[str] | None,
        since_ms: int | None,
        until_ms: int | None,
        where: Mapping[str, str] | None,
    ) -> _Mask | None:
        """Rows passing every filter as a boolean mask, or None when nothing is filtered."""
        n = len(self._docs)
        masks: list[_Mask] = []
        if tags:
            any_tag = np.zeros(n, np.bool_)
            for tag in set(tags):
                any_tag[self._tags.arrays(tag)[0]] = True
            masks.append(any_tag)
        if since_ms is not None:
            masks.append(self._created[:n] >= since_ms)
        if until_ms is not None:
            masks.append(self._created[:n] <= until_ms)
        for pair in (where or {}).items():
            equal = np.zeros(n, np.bool_)
            equal[self._fields.arrays(pair)[0]] = True
            masks.append(equal)
        for extra in masks[1:]:
            masks[0] &= extra
        return masks[0] if masks else None

    def _vector_rank(self, unit: NDArray[np.float32] | None, mask: _Mask | None, k: int) -> _Hits:
        if unit is None or self._matrix is None:
            return []
        n = len(self._docs)
        valid = self._has_vec[:n] if mask is None else self._has_vec[:n] & mask
        count = int(np.count_nonzero(valid))
        if count == 0:
            return []
        rows: _Rows | None = None
        if count == n:
            scores = self._matrix[:n] @ unit
        elif count < _GATHER_SHARE * n:  # a selective filter: copy out and score its rows only
            rows = np.flatnonzero(valid)
            scores = self._matrix[rows] @ unit
        else:  # a loose one: one pass over every row, then pick
            rows = np.flatnonzero(valid)
            scores = (self._matrix[:n] @ unit)[rows]
        # Rounding can leave a unit dot product just outside [-1, 1]; clip before ranking so
        # a clipped tie still falls to the ids.
        np.clip(scores, np.float32(-1.0), np.float32(1.0), out=scores)
        return self._top(scores, rows, k)

    def _text_rank(self, tokens: list[str], mask: _Mask | None, k: int) -> _Hits:
        n = len(self._docs)
        present = [t for t in tokens if t in self._postings]
        if not present:
            return []
        avg_len = self._total_len / n
        scores = np.zeros(n, np.float64)
        for token in present:  # sorted, so every record sums its terms in the same order
            rows, tf = self._postings.arrays(token)
            idf = math.log(1.0 + (n - rows.shape[0] + 0.5) / (rows.shape[0] + 0.5))
            norm_len = BM25_K1 * (1.0 - BM25_B + BM25_B * self._doc_len[rows] / avg_len)
            scores[rows] += idf * tf * (BM25_K1 + 1.0) / (tf + norm_len)
        matched = scores > 0.0  # idf > 0 and tf > 0, so a score of 0 means no token matched
        if mask is not None:
            matched &= mask
        rows = np.flatnonzero(matched)
        return self._top(scores[rows], rows, k)

    def _top(self, scores: NDArray[np.floating], rows: _Rows | None, k: int) -> _Hits:
        """The ``k`` best as ``(id, score)``, equal scores by id ascending.

        ``scores[i]`` belongs to row ``rows[i]``, or to row ``i`` when ``rows`` is None.
        """
        if scores.shape[0] > k:
            # Keep everything tied with the k-th score, so ids (not the partition) break ties.
            cut = scores.shape[0] - k
            picked = np.flatnonzero(scores >= np.partition(scores, cut)[cut])
            scores, rows = scores[picked], picked if rows is None else rows[picked]
        elif rows is None:
            rows = np.arange(scores.shape[0], dtype=np.intp)
        docs = self._docs
        pairs = [(docs[r].id, s) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)]
        pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        return pairs[:k]
