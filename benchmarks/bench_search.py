"""Search benchmark: rmem's memory search against raw redis-py sending the same FT.SEARCH.

Run from the repository root::

    python benchmarks/bench_search.py                       # full run: 100k records, dim 384
    python benchmarks/bench_search.py --quick               # small run (the smoke test)
    python benchmarks/bench_search.py --records 20000 --dim 128 --scale 0.5
    python benchmarks/bench_search.py --url redis://127.0.0.1:6379/0 --markdown out.md

Without ``--url`` it starts its own embedded Redis 8.2 with RediSearch
(``rmem.server.EmbeddedRedis``). The data are synthetic and seeded, so every run searches the
same corpus: each record's text is 8-20 words drawn Zipf-like from a fixed vocabulary of
generated words (BM25 sees realistic term frequencies), it has 1-3 tags from a small set, and a
random unit vector (float32). They are loaded through ``client.memories.add_many`` in chunks of
1,000 with explicit vectors (no embedder), and timing starts once ``FT.INFO`` reports the index
complete. Queries cycle through a fixed pool; text queries are 2-3 words drawn from the same
distribution as the texts.

Each rmem search and its raw baseline run against the same server in alternating blocks (see
``bench_sessions.py``), timed with ``perf_counter_ns`` with the GC off, after warm-up. The raw
side sends, with ``redis.Redis.execute_command``, the very ``FT.SEARCH`` rmem sends (built
once, outside the timing, by rmem's ``_search_redis`` helpers) and gets redis-py's parsed reply;
both sides speak RESP3, as rmem does. The raw hybrid baseline is the two ``FT.SEARCH`` in one
redis-py pipeline, without fusion. The in-process engine
(``search_engine="local"``) is measured on a smaller corpus and has no raw baseline: nothing in
Redis does its work. Budgets from DESIGN.md are reported, never asserted (exit code 0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis

# Runnable as a file from a source checkout without installing rmem.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sessions import Result, environment, measure, server_url, write_section

import rmem
from rmem._keys import memory_index
from rmem._search_local import hybrid_depth
from rmem._search_redis import IndexSpec, filter_expression, text_command, vector_command
from rmem._settings import DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_RUNTIME, DEFAULT_HNSW_M

X = "\u00d7"  # multiplication sign
MARK_START = "<!-- bench_search:start -->"
MARK_END = "<!-- bench_search:end -->"
SEED = 20240611
VOCABULARY = 5000
ZIPF_S = 1.0  # natural language is close to 1
TAGS = ("work", "personal", "research", "travel", "health", "finance", "code", "ideas")
FILTER_TAG = "research"
K = 10
LOAD_CHUNK = 1000
QUERY_POOL = 256

ROWS = (
    f"search(mode='vector', k={K})",
    f"raw FT.SEARCH KNN {K}",
    f"search(mode='text', k={K})",
    f"raw FT.SEARCH BM25STD LIMIT {K}",
    f"search(mode='hybrid', k={K})",
    "raw pipeline FT.SEARCH KNN + BM25STD",
    f"search(mode='vector', k={K}, tags=[1 tag])",
    f"raw FT.SEARCH KNN {K} + tag filter",
    f"local search(mode='vector', k={K})",
    f"local search(mode='text', k={K})",
    f"local search(mode='hybrid', k={K})",
)
VECTOR, RAW_VECTOR, TEXT, RAW_TEXT, HYBRID, RAW_HYBRID, TAGGED, RAW_TAGGED = ROWS[:8]
LOCAL_ROWS = ROWS[8:]
# Which rmem row each raw row is compared with, and the p95 budgets (µs) of DESIGN.md.
BASELINE_OF = {RAW_VECTOR: VECTOR, RAW_TEXT: TEXT}
BASELINE_OF |= {RAW_HYBRID: HYBRID, RAW_TAGGED: TAGGED}
BUDGET_P95_US = {VECTOR: 2000, TEXT: 2000, HYBRID: 3000, TAGGED: 2000}
BUDGET_RECORDS = 100_000


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Corpus:
    """The synthetic records and queries of one run; the same for a given size and dim."""

    words: list[str]
    weights: np.ndarray  # Zipf probabilities of ``words``, by rank
    dim: int

    @classmethod
    def make(cls, dim: int) -> Corpus:
        rng = np.random.default_rng(SEED)
        onsets = [*"bcdfghjklmnprstvwz", "ch", "sh", "th", "tr", "st", "br", "pl"]
        syllables = [o + v for o in onsets for v in ("a", "e", "i", "o", "u", "ai", "ou")]
        words: list[str] = []
        seen: set[str] = set()
        while len(words) < VOCABULARY:
            word = "".join(rng.choice(syllables, size=int(rng.integers(2, 5))))
            if word not in seen:
                seen.add(word)
                words.append(word)
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** ZIPF_S
        return cls(words, weights / weights.sum(), dim)

    def unit_vectors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        vectors = rng.standard_normal((n, self.dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def texts(self, rng: np.random.Generator, n: int, low: int, high: int) -> list[str]:
        lengths = rng.integers(low, high + 1, size=n)
        drawn = rng.choice(len(self.words), size=int(lengths.sum()), p=self.weights)
        out, at = [], 0
        for length in lengths:
            out.append(" ".join(self.words[w] for w in drawn[at : at + length]))
            at += length
        return out

    def records(self, n: int, seed: int = 0) -> Iterator[list[dict[str, Any]]]:
        """The ``n`` records, ``LOAD_CHUNK`` at a time (ids ``r0000000``...)."""
        rng = np.random.default_rng([SEED, seed, 1])
        for start in range(0, n, LOAD_CHUNK):
            size = min(LOAD_CHUNK, n - start)
            texts = self.texts(rng, size, 8, 20)
            vectors = self.unit_vectors(rng, size)
            tag_counts = rng.integers(1, 4, size=size)
            chunk = []
            for i in range(size):
                tags = rng.choice(TAGS, size=int(tag_counts[i]), replace=False).tolist()
                chunk.append(
                    {
                        "id": f"r{start + i:07d}",
                        "text": texts[i],
                        "tags": tags,
                        "vector": vectors[i],
                    }
                )
            yield chunk

    def queries(self, n: int) -> tuple[list[str], np.ndarray]:
        """``n`` text queries of 2-3 words and ``n`` query vectors."""
        rng = np.random.default_rng([SEED, 2])
        return self.texts(rng, n, 2, 3), self.unit_vectors(rng, n)


# ---------------------------------------------------------------- server side


def ft_info(raw: redis.Redis, index: str) -> dict[str, Any]:
    reply: Any = raw.execute_command("FT.INFO", index)
    if isinstance(reply, list):  # RESP2: a flat list of names and values
        reply = dict(zip(reply[::2], reply[1::2], strict=True))
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in reply.items()}


def wait_indexed(raw: redis.Redis, index: str, timeout: float = 3600.0) -> float:
    """Wait until the index has caught up with every record; return the seconds waited."""
    started = time.perf_counter()
    while True:
        info = ft_info(raw, index)
        if float(info["percent_indexed"]) >= 1.0 and int(info["indexing"]) == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"index {index} still indexing after {timeout:.0f} s")
        time.sleep(0.05)


def drop_namespace(raw: redis.Redis, namespace: str) -> None:
    """Remove a namespace's index and keys (far quicker than ``forget(all=True)`` at 100k)."""
    with contextlib.suppress(redis.ResponseError):
        raw.execute_command("FT.DROPINDEX", memory_index(namespace))
    batch: list[bytes] = []
    for key in raw.scan_iter(match=f"rmem:{{{namespace}}}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            raw.unlink(*batch)
            batch.clear()
    if batch:
        raw.unlink(*batch)


def text_matches(raw: redis.Redis, spec: IndexSpec, texts: list[str]) -> list[int]:
    """How many records each text query matches (what BM25 has to score), sorted."""
    every = filter_expression(None, None, None, {})
    counts = []
    for text in texts:
        command = text_command(spec, text, K, every)
        assert command is not None
        reply: Any = raw.execute_command(*command[:3], "NOCONTENT", "LIMIT", 0, 0, "DIALECT", 2)
        counts.append(int(reply[b"total_results"] if b"total_results" in reply else reply[0]))
    return sorted(counts)


def load(client: rmem.Client, corpus: Corpus, n: int, seed: int) -> float:
    """Add ``n`` records through ``add_many``; return the seconds it took."""
    took = 0.0
    for chunk in corpus.records(n, seed):  # data generation stays outside the timing
        t0 = time.perf_counter()
        client.memories.add_many(chunk)
        took += time.perf_counter() - t0
    return took


# ---------------------------------------------------------------- timed rows


def cycling(fn: Callable[[int], Any], n: int = QUERY_POOL) -> Callable[[], Any]:
    """An op for ``measure``: each call runs ``fn`` on the next query of the pool."""
    counter = itertools.count()
    return lambda: fn(next(counter) % n)


@dataclass
class Run:
    results: list[Result]
    load_s: float
    index_wait_s: float
    local_load_s: float
    index_info: dict[str, Any]
    matches: list[int]  # records matched by each text query, sorted


def run(
    url: str, records: int, local_records: int, dim: int, n: int, blocks: int, warmup: int
) -> Run:
    corpus = Corpus.make(dim)
    texts, vectors = corpus.queries(QUERY_POOL)
    ns = f"bench-search-{uuid.uuid4().hex[:8]}"
    ns_local = f"{ns}-local"
    raw = redis.Redis.from_url(url, protocol=3)  # rmem speaks RESP3 too
    opts = {"vector_dim": dim}
    try:
        with (
            rmem.Client.from_url(url, namespace=ns, search_engine="redisearch", **opts) as client,
            rmem.Client.from_url(url, namespace=ns_local, search_engine="local", **opts) as local,
        ):
            load_s = load(client, corpus, records, seed=0)
            index_wait_s = wait_indexed(raw, memory_index(ns))
            info = ft_info(raw, memory_index(ns))
            settings = client.settings
            spec = IndexSpec(ns, dim, (), settings.hnsw_m, settings.hnsw_ef_construction)
            matches = text_matches(raw, spec, texts)
            samples = _redis_rows(client, raw, spec, texts, vectors, n, blocks, warmup)
            local_load_s = load(local, corpus, local_records, seed=1)
            samples |= _local_rows(local, texts, vectors, n, blocks, warmup)
    finally:
        drop_namespace(raw, ns)
        drop_namespace(raw, ns_local)
        raw.close()
    results = [Result(name, samples[name]) for name in ROWS]
    return Run(results, load_s, index_wait_s, local_load_s, info, matches)


def _redis_rows(
    client: rmem.Client,
    raw: redis.Redis,
    spec: IndexSpec,
    texts: list[str],
    vectors: np.ndarray,
    n: int,
    blocks: int,
    warmup: int,
) -> dict[str, list[int]]:
    mem = client.memories
    ef = client.settings.hnsw_ef_runtime
    every = filter_expression(None, None, None, {})
    tagged = filter_expression([FILTER_TAG], None, None, {})
    blobs = [v.tobytes() for v in vectors]
    depth = hybrid_depth(K)
    # The commands rmem sends, built once: the raw side pays only for the round trip.
    knn = [vector_command(spec, b, K, every, ef) for b in blobs]
    knn_tagged = [vector_command(spec, b, K, tagged, ef) for b in blobs]
    bm25 = [text_command(spec, t, K, every) for t in texts]
    pair = [
        (vector_command(spec, b, depth, every, ef), text_command(spec, t, depth, every))
        for b, t in zip(blobs, texts, strict=True)
    ]

    def raw_pipeline(pairs: list[tuple[Any, Any]]) -> Callable[[int], Any]:
        def op(i: int) -> Any:
            pipe = raw.pipeline(transaction=False)
            for command in pairs[i]:
                pipe.execute_command(*command)
            return pipe.execute()

        return op

    def raw_call(commands: Sequence[Sequence[Any] | None]) -> Callable[[int], Any]:
        return lambda i: raw.execute_command(*commands[i])  # type: ignore[misc]

    def rmem_call(**kw: Any) -> Callable[[int], Any]:
        mode, tags = kw["mode"], kw.get("tags")
        use_text, use_vector = mode != "vector", mode != "text"
        return lambda i: mem.search(
            texts[i] if use_text else None,
            vector=vectors[i] if use_vector else None,
            k=K,
            mode=mode,
            tags=tags,
        )

    samples: dict[str, list[int]] = {}
    groups: list[Mapping[str, Callable[[int], Any]]] = [
        {VECTOR: rmem_call(mode="vector"), RAW_VECTOR: raw_call(knn)},
        {TEXT: rmem_call(mode="text"), RAW_TEXT: raw_call(bm25)},
        {HYBRID: rmem_call(mode="hybrid"), RAW_HYBRID: raw_pipeline(pair)},
        {TAGGED: rmem_call(mode="vector", tags=[FILTER_TAG]), RAW_TAGGED: raw_call(knn_tagged)},
    ]
    for group in groups:
        samples |= measure({k: cycling(f) for k, f in group.items()}, n, blocks, warmup)
    return samples


def _local_rows(
    local: rmem.Client,
    texts: list[str],
    vectors: np.ndarray,
    n: int,
    blocks: int,
    warmup: int,
) -> dict[str, list[int]]:
    mem = local.memories
    mem.search(texts[0], k=K, mode="text")  # loads the namespace into the process once
    ops = {
        LOCAL_ROWS[0]: lambda i: mem.search(vector=vectors[i], k=K, mode="vector"),
        LOCAL_ROWS[1]: lambda i: mem.search(texts[i], k=K, mode="text"),
        LOCAL_ROWS[2]: lambda i: mem.search(texts[i], vector=vectors[i], k=K, mode="hybrid"),
    }
    return measure({k: cycling(f) for k, f in ops.items()}, n, blocks, warmup)


# ---------------------------------------------------------------- report


def budget(row: str, by: dict[str, Result], records: int) -> str:
    if row in LOCAL_ROWS:
        return "no raw baseline (in process)"
    if row not in BUDGET_P95_US:
        return ""
    limit = BUDGET_P95_US[row]
    p95 = by[row].pct(95)
    what = "" if row != TAGGED else " (vector's)"
    if records < BUDGET_RECORDS:
        return f"p95 ≤ {limit / 1000:g} ms{what} at {BUDGET_RECORDS // 1000}k records: n/a here"
    verdict = "met" if p95 <= limit else "NOT MET"
    return f"p95 ≤ {limit / 1000:g} ms{what}: {p95 / 1000:.2f} ms **{verdict}**"


def table(results: list[Result], records: int, local_records: int) -> str:
    by = {r.name: r for r in results}
    lines = [
        "| operation | records | p50 µs | p95 µs | p99 µs | throughput | rmem÷raw p50 "
        "| rmem÷raw p95 | budget |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        size = local_records if r.name in LOCAL_ROWS else records
        cells = [f"`{r.name}`" if r.name not in BASELINE_OF else r.name, f"{size:,}"]
        cells += [f"{r.pct(p):,.0f}" for p in (50, 95, 99)] + [f"{r.rate():,.0f} ops/s"]
        base = by.get(BASELINE_OF.get(r.name, ""))
        cells += [f"{base.pct(p) / r.pct(p):.2f}{X}" if base else "" for p in (50, 95)]
        lines.append("| " + " | ".join([*cells, budget(r.name, by, records)]) + " |")
    return "\n".join(lines)


def search_module(url: str) -> str:
    server = redis.Redis.from_url(url)
    try:
        modules: Any = server.execute_command("MODULE", "LIST")
    finally:
        server.close()
    for module in modules:
        fields = (
            module
            if isinstance(module, dict)
            else dict(zip(module[::2], module[1::2], strict=True))
        )
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        name = fields.get("name", b"")
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name.lower() in ("search", "ft"):
            ver = int(fields.get("ver", 0))
            return f"RediSearch {ver // 10000}.{ver // 100 % 100}.{ver % 100}"
    return "no search module"


def describe(
    out: Run, args: argparse.Namespace, n: int, blocks: int, took: float, loads: list[float]
) -> str:
    info = out.index_info
    median, p90 = out.matches[len(out.matches) // 2], out.matches[int(len(out.matches) * 0.9)]
    rate = args.records / out.load_s if out.load_s else float("inf")
    local_rate = args.local_records / out.local_load_s if out.local_load_s else float("inf")
    sizes = ", ".join(
        f"{name} {float(info.get(name, 0)):,.1f} MB"
        for name in ("vector_index_sz_mb", "inverted_sz_mb", "doc_table_size_mb")
        if name in info
    )
    return (
        f"Records: {args.records:,} (dim {args.dim}, float32, seeded synthetic: 8-20 words "
        f"Zipf-drawn from {VOCABULARY:,} words, 1-3 of {len(TAGS)} tags; queries 2-3 words); "
        f"local engine rows: {args.local_records:,} records. Tag filter: `{FILTER_TAG}` "
        f"(on ~1/4 of the records). Words are OR-ed, without stop words (as rmem queries): a "
        f"text query matches a median {median / args.records:.0%} of the records (p90 "
        f"{p90 / args.records:.0%}), all scored by BM25.\n\n"
        f"HNSW (rmem Settings defaults): M={DEFAULT_HNSW_M}, "
        f"EF_CONSTRUCTION={DEFAULT_HNSW_EF_CONSTRUCTION}, EF_RUNTIME={DEFAULT_HNSW_EF_RUNTIME}; "
        f"cosine. Hybrid fuses the top {hybrid_depth(K)} of each ranking.\n\n"
        f"Load: `add_many` in chunks of {LOAD_CHUNK:,}: {out.load_s:.1f} s, {rate:,.0f} "
        f"records/s (RediSearch indexes each record as it is written); index complete "
        f"{out.index_wait_s:.2f} s after the last write; index sizes: {sizes or 'n/a'}. "
        f"Local namespace load: {out.local_load_s:.1f} s ({local_rate:,.0f} records/s).\n\n"
        f"Searches per row: {n:,} (in {blocks} alternating blocks, after warm-up, cycling "
        f"through {QUERY_POOL} queries); whole run took {took:.0f} s; 1-minute load average "
        f"{loads[0]:.1f} at the start, {loads[1]:.1f} at the end."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Redis with RediSearch (default: start an embedded one)")
    parser.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    parser.add_argument("--records", type=int, help="records searched (default 100,000)")
    parser.add_argument(
        "--local-records", type=int, help="records for the in-process rows (default 10,000)"
    )
    parser.add_argument("--dim", type=int, help="vector dimension (default 384)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every op count")
    parser.add_argument(
        "--blocks", type=int, help="alternating blocks per row (default 50; 10 with --quick)"
    )
    parser.add_argument("--markdown", type=Path, help="write/replace a section in this file")
    args = parser.parse_args(argv)
    quick = args.quick
    args.records = args.records or (2000 if quick else 100_000)
    args.local_records = args.local_records or (1000 if quick else 10_000)
    args.dim = args.dim or (64 if quick else 384)
    blocks = args.blocks or (10 if quick else 50)
    n, warmup = (100, 10) if quick else (2000, 100)
    n = max(blocks, int(n * args.scale))
    started, loads = time.perf_counter(), [os.getloadavg()[0]]
    with server_url(args.url) as url:
        env = f"{environment(url)}, {search_module(url)}"
        out = run(url, args.records, args.local_records, args.dim, n, blocks, warmup)
    took = time.perf_counter() - started
    loads.append(os.getloadavg()[0])
    text = (
        f"Environment: {env}\n\n{describe(out, args, n, blocks, took, loads)}\n\n"
        f"{table(out.results, args.records, args.local_records)}\n"
    )
    print(text)
    if args.markdown:
        write_section(args.markdown, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
