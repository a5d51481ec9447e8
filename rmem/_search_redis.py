"""RediSearch without I/O: the index schema, the compatibility check, queries and replies.

Schemas and queries are built with RedisVL's classes (``IndexSchema``, ``VectorQuery``,
``TextQuery``, ``FilterQuery`` and its filter expressions), which escape user text and tags;
rmem never assembles a query string by concatenation. The commands go out through rmem's own
backend, so they share its pipelining and error mapping.

Query text is reduced to its word tokens (``_search_local.tokenize``) before RedisVL sees it:
words are what both engines match on, and a token made only of punctuation can otherwise
reach RediSearch as a lone escaped character that its parser rejects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redisvl.query import FilterQuery, TextQuery, VectorQuery
from redisvl.query.filter import FilterExpression, Num, Tag
from redisvl.schema import IndexSchema

from rmem._errors import CorruptDataError, SchemaMismatchError
from rmem._keys import memory_index, memory_prefix
from rmem._memory_core import FIELD_PREFIX, TAG_SEPARATOR
from rmem._search_local import tokenize

# Fields a search hit carries (the vector stays in Redis: hits do not need it).
HIT_FIELDS = ("id", "text", "tags", "meta", "created", "updated", "stamp", "exp")
DISTANCE = "vector_distance"
_MAX_FILTER_PAGE = 1000


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What a client needs from a namespace's index."""

    namespace: str
    dim: int | None
    fields: tuple[str, ...]
    m: int
    ef_construction: int

    @property
    def name(self) -> str:
        return memory_index(self.namespace)


def schema(spec: IndexSpec) -> IndexSchema:
    """The RedisVL schema of a namespace's index."""
    exact = {"separator": TAG_SEPARATOR, "case_sensitive": True}
    fields: list[dict[str, Any]] = [
        {"name": "words", "type": "text"},
        {"name": "ns", "type": "tag", "attrs": exact},
        {"name": "tags", "type": "tag", "attrs": exact},
        {"name": "created", "type": "numeric"},
        {"name": "updated", "type": "numeric"},
    ]
    fields += [{"name": FIELD_PREFIX + f, "type": "tag", "attrs": exact} for f in spec.fields]
    if spec.dim is not None:
        fields.append(
            {
                "name": "vec",
                "type": "vector",
                "attrs": {
                    "dims": spec.dim,
                    "algorithm": "hnsw",
                    "distance_metric": "cosine",
                    "datatype": "float32",
                    "m": spec.m,
                    "ef_construction": spec.ef_construction,
                },
            }
        )
    return IndexSchema.from_dict(
        {
            "index": {"name": spec.name, "prefix": memory_prefix(spec.namespace)},
            "fields": fields,
        }
    )


def create_command(spec: IndexSpec) -> list[Any]:
    """``FT.CREATE`` for the namespace's index, covering exactly its record prefix.

    ``STOPWORDS 0``: every word counts, as in the in-process engine; with RediSearch's default
    list a query made only of stop words ("what is it") would match every record.
    """
    args: list[Any] = []
    for field in schema(spec).fields.values():
        args += [str(getattr(a, "value", a)) for a in field.as_redis_field().redis_args()]
    prefix = memory_prefix(spec.namespace)
    head = ["FT.CREATE", spec.name, "ON", "HASH", "PREFIX", 1, prefix, "STOPWORDS", 0, "SCHEMA"]
    return [*head, *args]


def describe(attributes: Mapping[str, Mapping[str, str]]) -> str:
    """A short human description of index attributes (for SchemaMismatchError)."""
    parts = []
    for name, attrs in sorted(attributes.items()):
        extra = " ".join(f"{k}={v}" for k, v in sorted(attrs.items()) if k != "type")
        parts.append(f"{name}:{attrs['type']}" + (f"({extra})" if extra else ""))
    return ", ".join(parts)


def expected_attributes(spec: IndexSpec) -> dict[str, dict[str, str]]:
    """The attributes (and the options that decide what a search returns) spec needs."""
    out: dict[str, dict[str, str]] = {"words": {"type": "TEXT"}, "created": {"type": "NUMERIC"}}
    for name in ("ns", "tags", *(FIELD_PREFIX + f for f in spec.fields)):
        out[name] = {"type": "TAG", "separator": repr(TAG_SEPARATOR), "casesensitive": "yes"}
    if spec.dim is not None:
        out["vec"] = {"type": "VECTOR", "dim": str(spec.dim), "distance_metric": "COSINE"}
    return out


def found_attributes(info: Mapping[Any, Any]) -> dict[str, dict[str, str]]:
    """Parse the ``attributes`` of an ``FT.INFO`` reply (RESP3 map) the same way."""
    out: dict[str, dict[str, str]] = {}
    for attribute in _get(info, "attributes") or []:
        attrs = {text_of(k).lower(): v for k, v in attribute.items()}
        flags = {text_of(f) for f in attrs.get("flags") or []}
        name = text_of(attrs.get("attribute") or attrs.get("identifier") or "?")
        entry = {"type": text_of(attrs.get("type", "?"))}
        if entry["type"] == "TAG":
            entry["separator"] = repr(text_of(attrs.get("separator", ",")))
            entry["casesensitive"] = "yes" if "CASESENSITIVE" in flags else "no"
        if entry["type"] == "VECTOR":
            entry["dim"] = text_of(attrs.get("dim", "?"))
            entry["distance_metric"] = text_of(attrs.get("distance_metric", "?"))
        out[name] = entry
    return out


def check_compatible(spec: IndexSpec, info: Mapping[Any, Any]) -> None:
    """Raise SchemaMismatchError unless the existing index serves ``spec`` correctly.

    Attributes the client does not use may exist (another client may declare more metadata
    fields, or give vectors this client does not search); every attribute it uses must be
    there with the same type and the options that decide results.
    """
    expected, found = expected_attributes(spec), found_attributes(info)
    wrong = {n: a for n, a in expected.items() if found.get(n) != a}
    if wrong:
        want = describe(wrong)
        have = describe({n: found[n] for n in wrong if n in found}) or "none of these fields"
        raise SchemaMismatchError(
            f"the search index {spec.name} does not match this client: it needs {want}; the "
            f"index has {have}. Migrate (see README, 'Changing the index') or use the same "
            "embedder and memory_fields as the clients that created it",
            expected=want,
            found=have,
            namespace=spec.namespace,
        )


# ---------------------------------------------------------------- queries


def filter_expression(
    tags: Sequence[str] | None,
    since_ms: int | None,
    until_ms: int | None,
    where: Mapping[str, str],
) -> FilterExpression | None:
    """The user's filters as one expression, or None when there are none.

    The namespace is not a filter: each namespace has its own index over its own key prefix,
    so a query cannot reach another namespace's records. Filtering on the ``ns`` tag anyway
    made RediSearch treat every KNN query as a filtered one: a hybrid search over 100k
    records took 26.8 ms at p50 with it against about 8 ms without (benchmarks/bench_search.py).
    """
    parts: list[FilterExpression] = []
    if tags:
        parts.append(Tag("tags") == list(tags))
    if since_ms is not None:
        parts.append(Num("created") >= since_ms)
    if until_ms is not None:
        parts.append(Num("created") <= until_ms)
    parts += [Tag(FIELD_PREFIX + name) == value for name, value in where.items()]
    if not parts:
        return None
    expr = parts[0]
    for part in parts[1:]:
        expr = expr & part
    return expr


def vector_command(
    spec: IndexSpec, vector: bytes, depth: int, where: FilterExpression | None, ef_runtime: int
) -> list[Any]:
    """``FT.SEARCH`` for the ``depth`` nearest records (cosine) passing ``where``."""
    query = VectorQuery(
        vector,
        "vec",
        return_fields=[*HIT_FIELDS, DISTANCE],
        filter_expression=where,
        num_results=depth,
        ef_runtime=max(ef_runtime, depth),
    )
    return _command(spec, query, query.params)


def text_command(
    spec: IndexSpec, text: str, depth: int, where: FilterExpression | None
) -> list[Any] | None:
    """``FT.SEARCH`` ranking records by BM25 on their text; None when ``text`` has no words."""
    tokens = tokenize(text)
    if not tokens:
        return None
    query = TextQuery(
        " ".join(tokens),
        "words",
        text_scorer="BM25STD",
        filter_expression=where,
        return_fields=list(HIT_FIELDS),
        num_results=depth,
        stopwords=None,
    )
    return _command(spec, query, {})


def filter_command(spec: IndexSpec, where: FilterExpression | None, offset: int) -> list[Any]:
    """``FT.SEARCH`` listing the ids of records passing ``where``, a page at a time."""
    query = FilterQuery(where, return_fields=["id"], num_results=_MAX_FILTER_PAGE)
    query.paging(offset, _MAX_FILTER_PAGE)
    return _command(spec, query, {})


def _command(spec: IndexSpec, query: Any, params: Mapping[str, Any]) -> list[Any]:
    args: list[Any] = ["FT.SEARCH", spec.name, *query.get_args()]
    if params:
        args += ["PARAMS", 2 * len(params)]
        for name, value in params.items():
            args += [name, value]
    return args


FILTER_PAGE = _MAX_FILTER_PAGE


@dataclass(frozen=True, slots=True)
class RawHit:
    """One document of an ``FT.SEARCH`` reply."""

    key: str
    score: float | None
    fields: dict[bytes, bytes]


def parse_reply(reply: Mapping[Any, Any]) -> tuple[int, list[RawHit]]:
    """Parse an ``FT.SEARCH`` reply (RESP3 map): (total matches, documents in order)."""
    try:
        hits = []
        for doc in _get(reply, "results"):
            score = _get(doc, "score")
            hits.append(
                RawHit(
                    text_of(_get(doc, "id")),
                    None if score is None else float(score),
                    dict(_get(doc, "extra_attributes") or {}),
                )
            )
        return int(_get(reply, "total_results")), hits
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        raise CorruptDataError(f"unexpected FT.SEARCH reply: {exc!r}") from None


def _get(reply: Mapping[Any, Any], name: str) -> Any:
    # hiredis gives map keys as bytes, the pure-Python parser may give str.
    value = reply.get(name.encode())
    return reply.get(name) if value is None else value


def text_of(value: Any) -> str:
    """A reply value as str (hiredis gives bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
