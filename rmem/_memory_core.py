"""Memory records without I/O: the public models, input checks, and the record hash layout.

A record is one Redis hash (see ``_keys.memory_key``). Its fields, written by
``lua/memory_put.lua`` and read back here:

- ``id``, ``text``, ``words`` (the word form of the text that the index reads), ``tags``
  (joined by ``TAG_SEPARATOR``), ``created``/``updated`` (server ms), ``stamp`` (hybrid
  logical clock), ``exp`` (expiry in server ms, 0 = none), ``dig`` (digest of the normalised
  text, for dedupe);
- optionally ``vec`` (float32 bytes), ``meta`` (packed metadata) and ``w_<name>`` (the string
  form of each declared metadata field, indexed for ``where=`` filters).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from rmem._codec import pack, unpack
from rmem._errors import CorruptDataError, ValidationError
from rmem._keys import memory_key
from rmem._search_local import tokenize
from rmem._validate import _CONTROL_RE, check_plain, check_session_id, check_ttl, check_unicode

__all__ = ["MemoryRecord", "SearchHit"]

Mode = Literal["vector", "text", "hybrid"]
MODES: tuple[Mode, ...] = ("vector", "text", "hybrid")
TAG_SEPARATOR = "\x1f"  # a control character: no valid tag can contain it
FIELD_PREFIX = "w_"
MAX_TAGS = 64
MAX_TAG_LENGTH = 256
MAX_K = 1000


class MemoryRecord(BaseModel):
    """One long-term memory of a namespace.

    Attributes:
        id: the record id (assigned, time-ordered, when ``add`` is given none).
        namespace: the namespace holding the record.
        text: what is remembered; searched by full text and, through its vector, by meaning.
        tags: labels for filtering (exact match, case-sensitive).
        metadata: free-form JSON-like dict; keys declared in ``Settings.memory_fields`` can be
            filtered with ``where=``.
        vector: the embedding, or None when the record has none (search hits omit it).
        created_at: Unix time (s) the id was first written, from the Redis server's clock.
        updated_at: Unix time (s) of the last change.
        stamp: the hybrid logical clock stamp of the last change (last writer wins).
        expires_at: Unix time (s) at which the record expires, or None.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    namespace: str
    text: str
    tags: list[str]
    metadata: dict[str, Any]
    vector: list[float] | None = None
    created_at: float
    updated_at: float
    stamp: str
    expires_at: float | None = None


class SearchHit(BaseModel):
    """One search result: the record and its score (higher is better).

    ``score`` is the cosine similarity in ``vector`` mode, the BM25 relevance in ``text`` mode
    and the reciprocal-rank-fusion score in ``hybrid`` mode.
    """

    model_config = ConfigDict(frozen=True)

    record: MemoryRecord
    score: float


# ---------------------------------------------------------------- input checks


def check_record_id(record_id: object, namespace: str) -> str:
    """Return a valid record id (same rules as session ids) or raise ValidationError."""
    try:
        return check_session_id(record_id, namespace)
    except ValidationError as exc:
        message = str(exc).replace("session id", "record id")
        raise ValidationError(message, namespace=namespace) from None


def check_text(text: object, namespace: str, max_bytes: int) -> str:
    """Return ``text`` if it is a non-blank str whose UTF-8 form fits ``max_bytes``."""
    if not isinstance(text, str):
        raise ValidationError(
            f"memory text must be a str, not {type(text).__name__}", namespace=namespace
        )
    if not text.strip():
        raise ValidationError("memory text must not be empty", namespace=namespace)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError(
            f"memory text is {size} bytes; the limit is {max_bytes}", namespace=namespace
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("memory text is not valid Unicode", namespace=namespace) from None
    return text


def check_tags(tags: object, namespace: str) -> list[str]:
    """Return the tags as a list without duplicates (first occurrence kept)."""
    if tags is None:
        return []
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise ValidationError(
            f"tags must be a list of str, not {type(tags).__name__}", namespace=namespace
        )
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(
                f"each tag must be a str of 1-{MAX_TAG_LENGTH} characters, not {tag!r}",
                namespace=namespace,
            )
        if _CONTROL_RE.search(tag):
            raise ValidationError(f"tag {tag!r} contains a control character", namespace=namespace)
        check_unicode(tag, "tag", namespace)
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValidationError(
            f"a record takes at most {MAX_TAGS} tags, not {len(out)}", namespace=namespace
        )
    return out


def check_metadata(
    metadata: object, namespace: str, max_bytes: int | None = None
) -> dict[str, Any]:
    """Return ``metadata`` as a dict of JSON-like values (None gives {}).

    Its encoding must fit ``max_bytes`` (the client's ``max_message_bytes``) when given.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(
            f"metadata must be a dict, not {type(metadata).__name__}", namespace=namespace
        )
    check_plain(metadata, "metadata")
    out = dict(metadata)
    try:
        pack(out, max_size=max_bytes)  # refuses what msgpack cannot hold: 65-bit ints, ...
    except ValidationError as exc:
        raise ValidationError(f"metadata: {exc}", namespace=namespace) from None
    return out


def check_vector(vector: object, dim: int | None, namespace: str) -> bytes:
    """Return ``vector`` as float32 bytes after checking its length against ``dim``."""
    if dim is None:
        raise ValidationError(
            "this client has no vector dimension: pass embedder= or vector_dim= to from_url",
            namespace=namespace,
        )
    if isinstance(vector, str | bytes) or not isinstance(vector, Sequence | np.ndarray):
        raise ValidationError(
            f"vector must be a list of floats, not {type(vector).__name__}", namespace=namespace
        )
    try:
        found = np.asarray(vector)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError("vector must hold only numbers", namespace=namespace) from None
    # Only real numbers: numpy would also read "1.5", True and 1j (dropping the imaginary part).
    if found.dtype.kind not in "fiu":
        raise ValidationError(
            "vector must hold only real numbers (no str, bool, complex or objects)",
            namespace=namespace,
        )
    with np.errstate(over="ignore"):  # too large for float32: inf, refused below
        array = found.astype(np.float32)
    if array.ndim != 1 or array.shape[0] != dim:
        raise ValidationError(
            f"vector has dimension {array.shape[0] if array.ndim == 1 else array.shape}; "
            f"this namespace's index expects {dim}",
            namespace=namespace,
        )
    if not np.isfinite(array).all() or not array.any():
        raise ValidationError("vector must be finite and not all zeros", namespace=namespace)
    return array.tobytes()


def check_ttl_seconds(ttl: object, namespace: str) -> int:
    """Return a record TTL in ms (0 for None)."""
    try:
        return check_ttl(ttl)
    except ValidationError as exc:
        raise ValidationError(str(exc), namespace=namespace) from None


def check_k(k: object) -> int:
    """Return ``k`` if it is an int in 1..MAX_K."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationError(f"k must be an int from 1 to {MAX_K}, not {k!r}")
    return k


def check_mode(mode: object) -> Mode:
    """Return ``mode`` if it names a search mode."""
    if mode not in MODES:
        raise ValidationError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def time_ms(value: object, name: str) -> int | None:
    """Convert ``since``/``until`` (datetime or Unix seconds) to ms; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        try:
            return int(value.timestamp() * 1000)
        except (OverflowError, ValueError, OSError):  # a naive extreme in local time
            raise ValidationError(f"{name} {value!r} is out of range") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a datetime or Unix seconds, not {value!r}")
    ms = value * 1000
    if not math.isfinite(ms):  # also 1e308, whose ms overflow
        raise ValidationError(f"{name} must be finite Unix seconds, not {value!r}")
    return int(ms)


def check_where(where: object, fields: Sequence[str]) -> dict[str, str]:
    """Return ``where`` as declared field -> string form; undeclared keys are refused."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise ValidationError(f"where must be a dict, not {type(where).__name__}")
    out: dict[str, str] = {}
    for name, value in where.items():
        if name not in fields:
            raise ValidationError(
                f"where= names {name!r}, which is not a declared memory field "
                f"(Settings.memory_fields = {tuple(fields)!r})"
            )
        form = field_form(value)
        if form is None:
            raise ValidationError(
                f"where[{name!r}] must be a non-empty str, a finite int or float, or a bool"
            )
        out[name] = check_unicode(form, f"where[{name!r}]")
    return out


def check_query(query: object) -> str | None:
    """Return a search query (a str, or None for none)."""
    if query is None:
        return None
    if not isinstance(query, str):
        raise ValidationError(f"query must be a str, not {type(query).__name__}")
    return check_unicode(query, "query")


def field_form(value: object) -> str | None:
    """The string a declared metadata value is indexed and compared by (None: not indexable)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(value)
    return None


def text_digest(text: str) -> str:
    """Digest of the normalised text (NFKC, case-folded, whitespace collapsed) for dedupe."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.blake2b(normal.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# ---------------------------------------------------------------- hash fields


def record_fields(
    text: str,
    tags: Sequence[str],
    metadata: Mapping[str, Any],
    vector: bytes | None,
    namespace: str,
    declared: Sequence[str],
) -> list[str | bytes]:
    """Flatten the user-given part of a record into field/value pairs for ``memory_put``."""
    fields: list[str | bytes] = ["ns", namespace, "text", text, "words", index_words(text)]
    fields += ["tags", TAG_SEPARATOR.join(tags)]
    if metadata:
        fields += ["meta", pack(metadata)]
    if vector is not None:
        fields += ["vec", vector]
    for name in declared:
        form = field_form(metadata.get(name))
        if form is not None:
            fields += [FIELD_PREFIX + name, form]
    return fields


def index_words(text: str) -> str:
    """The words of ``text`` as the search index sees them, one space apart.

    The index reads this field, not the text itself: RediSearch would treat a backslash in
    the text as an escape and glue words together, and the in-process engine must see the
    same words.
    """
    return " ".join(tokenize(text))


def declared_changes(
    metadata: Mapping[str, Any], declared: Sequence[str]
) -> tuple[list[str | bytes], list[str]]:
    """Field pairs to set and fields to remove when an update replaces the metadata."""
    to_set: list[str | bytes] = ["meta", pack(metadata)] if metadata else []
    to_remove: list[str] = [] if metadata else ["meta"]
    for name in declared:
        form = field_form(metadata.get(name))
        if form is None:
            to_remove.append(FIELD_PREFIX + name)
        else:
            to_set += [FIELD_PREFIX + name, form]
    return to_set, to_remove


def decode_record(
    namespace: str, key: str, fields: Mapping[bytes, bytes], *, with_vector: bool = True
) -> MemoryRecord:
    """Build a :class:`MemoryRecord` from its hash fields (raw bytes from Redis).

    Raises:
        CorruptDataError: a field is missing or cannot be decoded, or the hash is not the
            record its key names; names the key.
    """
    try:
        rid = fields[b"id"].decode()
        tags = fields.get(b"tags", b"").decode()
        meta = fields.get(b"meta")
        metadata = unpack(meta) if meta else {}
        vec = fields.get(b"vec") if with_vector else None
        expiry = int(fields.get(b"exp", 0))
        if type(metadata) is not dict:
            raise TypeError(f"metadata is a {type(metadata).__name__}, not a dict")
        if key != memory_key(namespace, rid):
            raise ValueError(f"it holds record {rid!r}")
        return MemoryRecord.model_construct(
            id=rid,
            namespace=namespace,
            text=fields[b"text"].decode(),
            tags=tags.split(TAG_SEPARATOR) if tags else [],
            metadata=metadata,
            vector=np.frombuffer(vec, dtype=np.float32).tolist() if vec else None,
            created_at=int(fields[b"created"]) / 1000,
            updated_at=int(fields[b"updated"]) / 1000,
            stamp=fields[b"stamp"].decode(),
            expires_at=expiry / 1000 if expiry else None,
        )
    except (CorruptDataError, KeyError, ValueError, TypeError, AttributeError) as exc:
        # UnicodeDecodeError is a ValueError; AttributeError: a field that is not bytes.
        raise CorruptDataError(
            f"memory record {key} cannot be decoded: {exc!r}", namespace=namespace, key=key
        ) from None


# ---------------------------------------------------------------- embedding


def check_embeddings(vectors: object, count: int, dim: int) -> list[bytes]:
    """Check what an embedder returned: ``count`` vectors of ``dim`` finite floats."""
    if not isinstance(vectors, Sequence | np.ndarray) or len(vectors) != count:
        raise ValidationError(f"the embedder returned {vectors!r:.80}, not {count} vectors")
    return [check_vector(v, dim, "") for v in vectors]


async def aembed_with(embedder: Any, texts: list[str], dim: int) -> list[bytes]:
    """Embed ``texts`` with ``embedder.aembed`` when it has one, else ``embed`` in a thread."""
    aembed = getattr(embedder, "aembed", None)
    if aembed is not None:
        vectors = await aembed(texts)
    else:
        vectors = await asyncio.to_thread(embedder.embed, texts)
    return check_embeddings(vectors, len(texts), dim)


def embed_with(embedder: Any, texts: list[str], dim: int) -> list[bytes]:
    """Embed ``texts`` with ``embedder.embed`` (the sync client's path)."""
    return check_embeddings(embedder.embed(texts), len(texts), dim)
