"""Make tests/data/sentences.txt: English prose sentences from the standard library's docstrings.

    python3 -I scripts/make_corpus.py              # writes tests/data/sentences.txt
    python3 -I scripts/make_corpus.py --check      # exit 1 if the file differs from a fresh run

The docstrings of the Python standard library (PSF licence) are real English written by many
people about many topics, ship with every interpreter, and can be checked in: a recall test
corpus that needs no download. The walk is deterministic (modules and members in sorted order,
a fixed seed for the final sample), but docstrings change between Python releases, so the output
depends on the interpreter's version; tests/data/README.md records which one made the file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import pkgutil
import random
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "sentences.txt"
COUNT = 3000
SEED = 20240601
MIN_WORDS, MAX_WORDS = 6, 40

# Modules with side effects on import (a browser, a GUI, printing), the test suites (code, not
# prose) and private or platform-specific modules that cannot be imported on every host.
SKIP_PREFIXES = (
    "antigravity",
    "this",
    "idlelib",
    "turtle",
    "turtledemo",
    "tkinter",
    "test",
    "lib2to3",
    "ensurepip",
    "pydoc_data",
    "__main__",
    "_",
)
SKIP_PARTS = {"test", "tests", "__main__"}

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")  # :func:`name` -> name
_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")  # ``x`` or `x` -> x
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Dots that do not end a sentence; a split after one of these is undone.
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "Mr.", "Dr.", "No.", "approx.")
_NOT_PROSE = re.compile(r">>>|\.\.\.|[{}\[\]=<>|\\#@$^~*]|https?:|\w\([^)]|\bself\b|--|::")
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def module_names() -> list[str]:
    """Every importable standard-library module and submodule name, sorted."""
    names: set[str] = set()
    for top in sorted(sys.stdlib_module_names):
        if top.startswith(SKIP_PREFIXES):
            continue
        module = _import(top)
        if module is None:
            continue
        names.add(top)
        path = getattr(module, "__path__", None)
        if path is None:
            continue
        for info in pkgutil.walk_packages(path, prefix=top + ".", onerror=lambda _name: None):
            parts = info.name.split(".")
            if SKIP_PARTS.intersection(parts) or any(p.startswith("_") for p in parts[1:]):
                continue
            names.add(info.name)
    return sorted(names)


def _import(name: str) -> ModuleType | None:
    """Import ``name`` quietly; None when it cannot be imported here."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except BaseException:  # ImportError, SystemExit, platform errors: skip the module
            return None


def docstrings(module: ModuleType) -> Iterator[str]:
    """The module's docstring, then those of its own public classes, functions and methods."""
    if module.__doc__:
        yield module.__doc__
    for name, member in sorted(vars(module).items()):
        if name.startswith("_") or getattr(member, "__module__", None) != module.__name__:
            continue
        if not (inspect.isclass(member) or inspect.isfunction(member)):
            continue
        if member.__doc__:
            yield member.__doc__
        if inspect.isclass(member):
            for attr, value in sorted(vars(member).items()):
                if attr.startswith("_"):
                    continue
                doc = getattr(value, "__doc__", None)
                if (inspect.isfunction(value) or isinstance(value, property)) and doc:
                    yield doc


def paragraphs(doc: str) -> Iterator[str]:
    """Prose paragraphs of a docstring, unwrapped; indented blocks (code, lists) are dropped."""
    text = inspect.cleandoc(doc)
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if not lines or any(line.startswith((" ", "\t", ">>>", "-", "*", "+")) for line in lines):
            continue
        yield " ".join(line.strip() for line in lines)


def sentences(paragraph: str) -> Iterator[str]:
    """Split an unwrapped paragraph into sentences, keeping abbreviations inside them."""
    paragraph = _ROLE.sub(r"\1", paragraph)
    paragraph = _LITERAL.sub(lambda m: m.group(1) or m.group(2), paragraph)
    pieces = _SPLIT.split(paragraph)
    merged: list[str] = []
    for piece in pieces:
        if merged and merged[-1].endswith(_ABBREVIATIONS):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    yield from (" ".join(s.split()) for s in merged)


def is_prose(sentence: str) -> bool:
    """A sentence a person wrote for people: capitalised, ended, mostly words, no code."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if not (sentence[0].isupper() and sentence[-1] in ".?!") or _NOT_PROSE.search(sentence):
        return False
    if sentence.isupper() or not sentence.isascii():
        return False
    letters = sum(c.isalpha() for c in sentence)
    if letters / len(sentence.replace(" ", "")) < 0.85:
        return False
    # At least two thirds of the tokens are plain words (not dotted names, numbers, paths).
    plain = sum(1 for w in words if _WORD.fullmatch(w.strip(".,;:?!\"'()")))
    return plain * 3 >= len(words) * 2


def collect() -> list[str]:
    """All prose sentences, deduplicated, in walk order."""
    seen: set[str] = set()
    out: list[str] = []
    with warnings.catch_warnings():
        # Reading a deprecated alias's __doc__ (typing.io, typing.re) warns; nothing to act on.
        warnings.simplefilter("ignore")
        for name in module_names():
            module = _import(name)
            if module is None:
                continue
            for doc in docstrings(module):
                for paragraph in paragraphs(doc):
                    for sentence in sentences(paragraph):
                        key = sentence.lower()
                        if key not in seen and is_prose(sentence):
                            seen.add(key)
                            out.append(sentence)
    return out


def make() -> str:
    """The file's content: COUNT sentences sampled with SEED, kept in walk order."""
    found = collect()
    if len(found) < COUNT:
        raise SystemExit(f"only {len(found)} prose sentences found, {COUNT} needed")
    keep = sorted(random.Random(SEED).sample(range(len(found)), COUNT))
    return "".join(found[i] + "\n" for i in keep)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = make()
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} differs from a fresh run")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {COUNT} sentences to {OUT.relative_to(ROOT)} (Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
