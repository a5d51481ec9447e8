"""Search for the LangGraph store without I/O: value filters, index tokens, schemas, queries.

LangGraph filters (``{"color": "red", "score": {"$gte": 4}}``) name arbitrary value fields,
which no fixed RediSearch schema can declare. So the index holds *tokens*: ``kv`` has one per
top-level scalar of an item's value, and a filter's equality conditions become tag matches on
those tokens, narrowing the candidates in Redis. Every candidate is then checked against the
whole filter in Python (:func:`matches`), which decides; the tokens only have to never miss a
match. Queries are built with RedisVL's classes, as :mod:`rmem._search_redis` does.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redisvl.query import FilterQuery, VectorQuery
from redisvl.query.filter import FilterExpression, Num, Tag
from redisvl.schema import IndexSchema

from rmem._errors import SchemaMismatchError, ValidationError
from rmem._keys import StoreKeys, encode_path
from rmem._search_redis import found_attributes

OPERATORS = frozenset(("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"))
ALL_FIELDS = "all"  # the kv token of an item with too many scalars to index one by one
MAX_KV_FIELDS = 64
MAX_KV_TEXT = 256
_EXACT_FLOAT = 2.0**53  # numbers beyond this are not tokenised: int/float equality gets fuzzy
# Fields an item listing returns (the values, without the index tokens).
ITEM_FIELDS = ("ns", "key", "val", "created", "updated", "ttl", "nv", "seq")
DISTANCE = "vector_distance"

Distance = Literal["cosine", "inner_product", "l2"]
METRICS: dict[str, str] = {"cosine": "cosine", "inner_product": "ip", "l2": "l2"}


# ---------------------------------------------------------------- filters


def check_filter(flt: object) -> dict[str, Any] | None:
    """Return a SearchOp filter after checking its shape and operators (None stays None).

    Raises:
        ValidationError: not a dict of field -> value, or an unknown ``$`` operator.
    """
    if flt is None:
        return None
    if not isinstance(flt, Mapping):
        raise ValidationError(f"filter must be a dict, not {type(flt).__name__}")
    _check_level(flt, "filter")
    return dict(flt)


def _check_level(flt: Mapping[Any, Any], where: str) -> None:
    for name, expected in flt.items():
        if not isinstance(name, str):
            raise ValidationError(f"{where}: field names must be str, not {name!r}")
        if isinstance(expected, Mapping) and any(str(k).startswith("$") for k in expected):
            unknown = [k for k in expected if k not in OPERATORS]
            if unknown:
                raise ValidationError(
                    f"{where}[{name!r}]: unsupported operator(s) {unknown}; "
                    f"use {', '.join(sorted(OPERATORS))}"
                )
        elif isinstance(expected, Mapping):
            _check_level(expected, f"{where}[{name!r}]")


def matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether an item value passes a filter (LangGraph's InMemoryStore semantics).

    A plain value must equal the field (nested dicts and lists compare element-wise); an
    operator dict applies each operator. Ordering operators compare numbers with numbers and
    strings with strings; any other pairing (a missing field included) does not match.
    """
    if not flt:
        return True
    return all(_compare(value.get(name), expected) for name, expected in flt.items())


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(str(k).startswith("$") for k in expected):
            return all(_apply(actual, op, arg) for op, arg in expected.items())
        if not isinstance(actual, Mapping):
            return False
        return all(_compare(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def _apply(actual: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(actual == arg)
    if op == "$ne":
        return bool(actual != arg)
    if not _ordered(actual, arg):
        return False
    if op == "$gt":
        return bool(actual > arg)
    if op == "$gte":
        return bool(actual >= arg)
    if op == "$lt":
        return bool(actual < arg)
    return bool(actual <= arg)  # $lte (check_filter refused anything else)


def _ordered(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return True
    return _is_number(a) and _is_number(b)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(x)


# ---------------------------------------------------------------- tokens


def _scalar_form(value: Any) -> str | None:
    """The form a scalar is tokenised by, equal for values Python finds equal; None: untokenised.

    Numbers (and bools, which Python compares as 0 and 1) share one float form, so ``1``,
    ``1.0`` and ``True`` meet. None is never tokenised: a filter on None also matches a
    missing field, which has no token to find.
    """
    if isinstance(value, str):
        return "s:" + value if len(value) <= MAX_KV_TEXT else None
    if isinstance(value, int | float) and math.isfinite(value) and abs(value) <= _EXACT_FLOAT:
        return "n:" + repr(float(value) + 0.0)  # + 0.0 folds -0.0 into 0.0
    return None


def _kv_token(name: str, form: str) -> str:
    return token(f"{name}\x00{form}")


def value_tokens(value: Mapping[str, Any]) -> str:
    """The ``kv`` tag of an item: one token per tokenisable top-level scalar, comma-joined."""
    out = []
    for name, field in value.items():
        form = _scalar_form(field)
        if form is not None:
            out.append(_kv_token(name, form))
    if len(out) > MAX_KV_FIELDS:
        return ALL_FIELDS
    return ",".join(out)


def filter_tokens(flt: Mapping[str, Any] | None) -> list[str]:
    """Tokens every item matching ``flt`` carries (or it carries ``ALL_FIELDS``)."""
    out: list[str] = []
    for name, expected in (flt or {}).items():
        if isinstance(expected, Mapping):
            if "$eq" not in expected:
                continue
            expected = expected["$eq"]
        form = _scalar_form(expected) if not isinstance(expected, list | tuple) else None
        if form is not None:
            out.append(_kv_token(name, form))
    return out


def ancestry(labels: tuple[str, ...]) -> str:
    """The ``anc`` tag of an item in namespace ``labels``."""
    return ",".join(prefix_tokens(labels))


# ---------------------------------------------------------------- index schemas


@dataclass(frozen=True, slots=True)
class VectorSpec:
    """The vector index of a store: dimension, distance and storage type."""

    dims: int
    distance: Distance
    dtype: Literal["float32", "float16"]
    m: int
    ef_construction: int

    def score(self, distance: float) -> float:
        """Similarity from a RediSearch distance, as LangGraph's PostgresStore reports it.

        cosine: 1 - cosine distance; inner_product: the dot product (RediSearch gives
        1 - dot); l2: minus the Euclidean distance (RediSearch gives its square).
        """
        if self.distance == "l2":
            return -math.sqrt(max(distance, 0.0))
        return 1.0 - distance


_TOKEN_TAG = {"separator": ","}


def item_schema(keys: StoreKeys) -> IndexSchema:
    """RedisVL schema of the item index (namespace and value tokens, order, expiry)."""
    return IndexSchema.from_dict(
        {
            "index": {"name": keys.item_index, "prefix": keys.item_prefix},
            "fields": [
                {"name": "anc", "type": "tag", "attrs": _TOKEN_TAG},
                {"name": "kv", "type": "tag", "attrs": _TOKEN_TAG},
                {"name": "seq", "type": "numeric", "attrs": {"sortable": True}},
                {"name": "exp", "type": "numeric"},
                {"name": "nv", "type": "numeric"},
            ],
        }
    )


def vector_schema(keys: StoreKeys, spec: VectorSpec) -> IndexSchema:
    """RedisVL schema of the vector index (one document per embedded text)."""
    return IndexSchema.from_dict(
        {
            "index": {"name": keys.vector_index, "prefix": keys.vector_prefix},
            "fields": [
                {"name": "anc", "type": "tag", "attrs": _TOKEN_TAG},
                {"name": "kv", "type": "tag", "attrs": _TOKEN_TAG},
                {"name": "exp", "type": "numeric"},
                {
                    "name": "vec",
                    "type": "vector",
                    "attrs": {
                        "dims": spec.dims,
                        "algorithm": "hnsw",
                        "distance_metric": METRICS[spec.distance],
                        "datatype": spec.dtype,
                        "m": spec.m,
                        "ef_construction": spec.ef_construction,
                    },
                },
            ],
        }
    )


def create_command(schema: IndexSchema) -> list[Any]:
    """``FT.CREATE`` for a schema, over exactly its key prefix."""
    args: list[Any] = []
    for field in schema.fields.values():
        args += [str(getattr(a, "value", a)) for a in field.as_redis_field().redis_args()]
    head = ["FT.CREATE", schema.index.name, "ON", "HASH", "PREFIX", 1, schema.index.prefix]
    return [*head, "STOPWORDS", 0, "SCHEMA", *args]


def check_vector_index(
    name: str, spec: VectorSpec, info: Mapping[Any, Any], namespace: str
) -> None:
    """Raise SchemaMismatchError unless the vector index has the store's dims and metric."""
    found = found_attributes(info).get("vec", {})
    want = {"type": "VECTOR", "dim": str(spec.dims), "distance_metric": METRICS[spec.distance]}
    have = {k: found.get(k, "?") for k in want}
    if {k: v.upper() for k, v in have.items()} != {k: v.upper() for k, v in want.items()}:
        raise SchemaMismatchError(
            f"the vector index {name} has {have}; this store's index= config needs {want}. "
            "Use the same dims and distance_type as the store that created it, or drop the "
            f"index (FT.DROPINDEX {name}) and write the items again",
            expected=str(want),
            found=str(have),
            namespace=namespace,
        )


# ---------------------------------------------------------------- queries


def expression(
    prefix: Sequence[str], tokens: Sequence[str], now_ms: int, *, unembedded: bool = False
) -> FilterExpression:
    """Live items under ``prefix`` carrying each of ``tokens`` (or ``ALL_FIELDS``)."""
    expr: FilterExpression = (Num("exp") == 0) | (Num("exp") > now_ms)
    if prefix:
        expr = expr & (Tag("anc") == prefix_tokens(tuple(prefix))[-1])
    for tok in tokens:
        expr = expr & (Tag("kv") == [tok, ALL_FIELDS])
    if unembedded:
        expr = expr & (Num("nv") == 0)
    return expr


def list_command(keys: StoreKeys, expr: FilterExpression, offset: int, count: int) -> list[Any]:
    """``FT.SEARCH`` of items, newest write first, a page at a time."""
    query = FilterQuery(
        expr, return_fields=list(ITEM_FIELDS), num_results=count, sort_by=("seq", "DESC")
    )
    query.paging(offset, count)
    return ["FT.SEARCH", keys.item_index, *query.get_args()]


def knn_command(
    keys: StoreKeys,
    spec: VectorSpec,
    vector: bytes,
    k: int,
    expr: FilterExpression,
    ef_runtime: int,
) -> list[Any]:
    """``FT.SEARCH`` of the ``k`` nearest vector documents passing ``expr``."""
    query = VectorQuery(
        vector,
        "vec",
        return_fields=["item", DISTANCE],
        filter_expression=expr,
        dtype=spec.dtype,
        num_results=k,
        ef_runtime=max(ef_runtime, k),
    )
    args: list[Any] = ["FT.SEARCH", keys.vector_index, *query.get_args(), "PARAMS"]
    args.append(2 * len(query.params))
    for name, value in query.params.items():
        args += [name, value]
    return args


# Search filters match *tokens* rather than raw text: ``anc`` holds a digest of every prefix of
# the item's namespace, ``kv`` a digest of every top-level scalar of its value. Digests are
# fixed-length hex, which no tag escaping or trimming can alter; every hit is checked again in
# Python, so a digest collision could cost a page fill but never return a wrong item.


def token(text: str) -> str:
    """A fixed-length tag token for ``text`` (128-bit BLAKE2b, hex)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def prefix_tokens(labels: tuple[str, ...]) -> list[str]:
    """The ``anc`` tokens of a namespace: one per non-empty prefix of it."""
    return [token(encode_path(labels[:n])) for n in range(1, len(labels) + 1)]
