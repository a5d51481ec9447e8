"""Find or fetch a plain Redis 6/7 (no search module) for the tests of rmem on plain Redis.

rmem must work, search included, on a plain Redis 7 without RediSearch (Debian's
``redis-server`` 7.0). Test machines have only Python and pip and tests may not
``apt-get install``, but ``apt-get download`` needs no root and ``dpkg-deb -x`` unpacks a .deb
anywhere. :func:`plain_redis_binary` takes the first of:

1. ``$RMEM_TEST_PLAIN_REDIS``, the path of a ``redis-server`` (``off`` disables plain Redis);
2. a ``redis-server`` 6.x or 7.x on ``PATH``;
3. the cache ``~/.cache/rmem-test/redis7/current`` left by an earlier download;
4. Debian's packages, fetched with ``apt-get download`` and unpacked into that cache.

The result is an executable for ``EmbeddedRedis(redis_server=..., modules=False)``. When none
works it is ``None`` and :func:`why_unavailable` says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "RMEM_TEST_PLAIN_REDIS"
_DISABLED = {"0", "off", "no", "none", "false"}
# redis-tools holds the binary (redis-server is a symlink to redis-check-rdb, and Redis picks its
# mode from argv[0], so it must be run through that symlink from the redis-server package).
# liblzf1 and libjemalloc2 are rarely installed; libatomic1 is missing from slim images.
PACKAGES = ("redis-server", "redis-tools", "liblzf1", "libjemalloc2", "libatomic1")
VERSION_TIMEOUT = 10.0
APT_TIMEOUT = 300.0
LOCK_TIMEOUT = 2 * APT_TIMEOUT + 60.0  # another process may be in the middle of two apt runs
_VERSION = re.compile(r"\bv=(\d+\.\d+\.\d+)")

# EmbeddedRedis takes no environment, so the libraries come through this wrapper. It must
# `exec`: the server then keeps the pid EmbeddedRedis spawned (its startup check compares
# INFO process_id with it) and the parent-death signal it set.
_WRAPPER = """\
#!/bin/sh
# Written by rmem's tests/_plain_redis.py: runs the redis-server unpacked beside this file
# with the shared libraries unpacked with it (readlink: this file may be run via a symlink).
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="{libpath}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
export LD_LIBRARY_PATH
exec "$here/root/usr/bin/redis-server" "$@"
"""


class _Unavailable(Exception):
    """A source of plain Redis did not work; the message says why."""


@dataclass(frozen=True)
class PlainRedis:
    """A ``redis-server`` without the search module.

    Attributes:
        path: absolute path of an executable for ``EmbeddedRedis(redis_server=path)``.
        version: what ``--version`` reports, e.g. ``"7.0.15"``.
        source: where it came from: ``"env"``, ``"path"``, ``"cache"`` or ``"download"``.
    """

    path: str
    version: str
    source: str

    def describe(self) -> str:
        """One line for test reports, e.g. ``plain Redis 7.0.15 (cache: /root/.cache/...)``."""
        return f"plain Redis {self.version} ({self.source}: {self.path})"


def cache_dir() -> Path:
    """Return the cache directory, ``$XDG_CACHE_HOME`` (default ``~/.cache``)/rmem-test/redis7."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "rmem-test", "redis7")


def plain_redis_binary() -> PlainRedis | None:
    """Return a plain Redis 6/7 to run, fetching it once per machine; ``None`` when impossible.

    The lookup runs once per process; a download can take a few seconds.
    """
    return _lookup()[0]


def why_unavailable() -> str:
    """Return why :func:`plain_redis_binary` gave ``None`` (``""`` when it did not)."""
    return _lookup()[1]


@functools.cache
def _lookup() -> tuple[PlainRedis | None, str]:
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured.lower() in _DISABLED:
        return None, f"${ENV_VAR}={configured} disables it"
    if configured:
        # An explicit choice is not second-guessed (any version) nor silently replaced.
        path = os.path.abspath(configured)
        try:
            return PlainRedis(path, _version(path), "env"), ""
        except _Unavailable as exc:
            return None, f"${ENV_VAR}={configured}: {exc}"
    reasons = []
    on_path = shutil.which("redis-server")
    if on_path is None:
        reasons.append("no redis-server on PATH")
    else:
        # The query engine is built into Redis only from 8.0, and EmbeddedRedis passes no
        # config file, so a 6.x or 7.x started by it cannot have the search module.
        try:
            version = _version(on_path)
            if version.split(".")[0] in ("6", "7"):
                return PlainRedis(os.path.abspath(on_path), version, "path"), ""
            reasons.append(f"{on_path} is Redis {version}, not 6 or 7")
        except _Unavailable as exc:
            reasons.append(f"{on_path}: {exc}")
    try:
        return _cached_or_downloaded(), ""
    except _Unavailable as exc:
        reasons.append(str(exc))
    return None, "; ".join(reasons)


def _cached_or_downloaded() -> PlainRedis:
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _Unavailable(f"cannot create the cache {root}: {exc}") from exc
    current = root / "current"
    wrapper = str(current / "redis-server")
    # Under the lock: another pytest process may be downloading; it then finds the cache.
    with _locked(root / ".lock"):
        with contextlib.suppress(_Unavailable):  # absent or broken: fetch afresh
            return PlainRedis(wrapper, _version(wrapper), "cache")
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is not secret
        try:
            _fetch_into(staging)
            # The wrapper finds its files relative to itself, so it can be checked here.
            version = _version(str(staging / "redis-server"))
            if current.exists():
                old = Path(tempfile.mkdtemp(prefix=".old-", dir=root))
                current.rename(old / "current")
                shutil.rmtree(old, ignore_errors=True)
            staging.rename(current)  # atomic: readers see the whole tree or none of it
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return PlainRedis(wrapper, version, "download")


def _fetch_into(dest: Path) -> None:
    """Download :data:`PACKAGES`, unpack them into ``dest/root`` and write the wrapper."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise _Unavailable("apt-get or dpkg-deb is missing (not a Debian-like system)")
    with tempfile.TemporaryDirectory(prefix="rmem-redis7-") as tmp:
        debs = Path(tmp, "debs")
        debs.mkdir()
        try:
            _run(["apt-get", "download", *PACKAGES], cwd=debs)
        except _Unavailable as first:
            # Debian's Docker images delete the package lists; without root, fetch fresh
            # ones into a private directory (apt-get update -o ...) rather than the system's.
            lists, cache = Path(tmp, "lists"), Path(tmp, "cache")
            (lists / "partial").mkdir(parents=True)
            (cache / "archives" / "partial").mkdir(parents=True)
            private = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}"]
            private += ["-o", "Debug::NoLocking=1"]
            try:
                _run(["apt-get", *private, "update"], cwd=Path(tmp))
                _run(["apt-get", *private, "download", *PACKAGES], cwd=debs)
            except _Unavailable as second:
                raise _Unavailable(
                    f"apt-get download failed ({first}), and again with fresh package lists "
                    f"({second})"
                ) from None
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(dest / "root")], cwd=debs)
    libdirs = sorted({lib.parent for lib in (dest / "root").rglob("*.so*")})
    libpath = ":".join(f"$here/{d.relative_to(dest)}" for d in libdirs)
    wrapper = dest / "redis-server"
    wrapper.write_text(_WRAPPER.format(libpath=libpath))
    wrapper.chmod(0o755)


def _version(path: str) -> str:
    """Return the version ``path --version`` reports, proving the binary (and libs) run."""
    if not os.path.isfile(path):
        raise _Unavailable(f"{path} does not exist")
    out = _run([path, "--version"], timeout=VERSION_TIMEOUT)
    found = _VERSION.search(out)
    if found is None:
        raise _Unavailable(f"{path} --version printed no version: {out.strip()[:200]!r}")
    return found.group(1)


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float = APT_TIMEOUT) -> str:
    """Run ``cmd`` and return its stdout; failures become :class:`_Unavailable`."""
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"{cmd[0]} {cmd[1]}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise _Unavailable(f"{' '.join(cmd[:2])} exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; the kernel drops it if the holder dies."""
    with open(path, "a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _Unavailable(f"timed out waiting for the lock {path}") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
