"""What every act of ``rmem demo`` shares: its context and the runner of its processes.

An act spawns its processes with :func:`run_processes`, which starts them together once all
have connected, shows their progress live, and collects what each sends back. Work functions
are module-level functions taking a :class:`Link` and one argument, so that multiprocessing's
"spawn" can pickle them by module path. An act that must act on the world while its processes
run (act 4 kills Redis) gives :func:`run_processes` a director: it is called on the parent's
main thread with the latest data each process attached to its progress.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    from rich.console import Console

    from rmem.server import EmbeddedRedis

READY_TIMEOUT = 60.0  # seconds for an act's processes to start and connect
PROGRESS_INTERVAL = 0.02  # seconds between progress reports from a process
JOIN_TIMEOUT = 5.0
EXIT_GRACE = 0.5  # seconds a dead process's last report may still be in flight


@dataclass
class DemoContext:
    """What every act gets: where Redis is, how big to make the run, where to print."""

    url: str
    messages: int
    console: Console
    live: bool  # show live progress (a terminal and no --quiet)
    server: EmbeddedRedis | None  # the embedded server, None with --url


@dataclass
class Link:
    """A process's line to the parent: reports go up ``events``, the go comes down ``start``."""

    name: str
    url: str
    events: Queue[Any]
    start: Event
    _last_progress: float = field(default=0.0, init=False, repr=False)

    def ready(self) -> None:
        """Tell the parent this process is connected, then wait until every process is."""
        self.events.put(("ready", self.name, None))
        if not self.start.wait(READY_TIMEOUT):
            raise TimeoutError("the demo never gave the start signal")

    def progress(self, done: int, note: str, *, final: bool = False, data: Any = None) -> None:
        """Report progress; at most every PROGRESS_INTERVAL, so the queue never floods.

        ``data`` (picklable) goes to the act's director, if it has one.
        """
        now = time.perf_counter()
        if final or now - self._last_progress >= PROGRESS_INTERVAL:
            self.events.put(("progress", self.name, (done, note, data)))
            self._last_progress = now


# What a process runs: module-level, so that "spawn" can pickle it by name.
_Work = Callable[[Link, Any], Any]
# What the parent runs between two events: it gets the latest ``data`` of each process's
# progress reports (processes that sent none yet are missing), on the parent's main thread.
Director = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Process:
    """One process of an act: its name, its work and its argument, its progress bar length."""

    name: str
    work: _Work
    arg: Any
    total: int


def _process_main(work: _Work, link: Link, arg: Any) -> None:
    """Entry point of a demo process (spawned, so it imports rmem afresh)."""
    # Ctrl-C reaches the whole process group; the parent decides when processes stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        link.events.put(("done", link.name, work(link, arg)))
    except Exception as exc:
        link.events.put(("error", link.name, f"{type(exc).__name__}: {exc}"))


def run_processes(
    ctx: DemoContext,
    specs: list[Process],
    run_timeout: float,
    director: Director | None = None,
) -> tuple[dict[str, Any], list[str], float]:
    """Run processes with live progress until all are done; return reports, errors, seconds.

    ``run_timeout`` counts from the start signal, given once every process is ready. Once it
    is given, ``director`` is called after every event and at least every 0.1 s; what it
    raises ends the run (the processes are stopped) and reaches the caller.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    mp = multiprocessing.get_context("spawn")
    events: Queue[Any] = mp.Queue()
    start = mp.Event()
    names = [spec.name for spec in specs]
    procs: dict[str, SpawnProcess] = {
        spec.name: mp.Process(
            target=_process_main,
            args=(spec.work, Link(spec.name, ctx.url, events, start), spec.arg),
            name=f"rmem-demo-{spec.name}",
            daemon=True,
        )
        for spec in specs
    }
    reports: dict[str, Any] = {}
    errors: dict[str, str] = {}
    latest: dict[str, Any] = {}  # the data of each process's last progress report
    ready: set[str] = set()
    exited: dict[str, float] = {}
    began = time.perf_counter()
    deadline = time.monotonic() + READY_TIMEOUT
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        console=ctx.console,
        disable=not ctx.live,
    )
    finished = False
    try:
        for proc in procs.values():
            proc.start()
        with progress:
            tasks = {
                spec.name: progress.add_task(spec.name, total=spec.total, note="") for spec in specs
            }
            while len(reports) < len(specs) and not errors:  # one failure ends the act
                if time.monotonic() > deadline:
                    errors.update({name: "timed out" for name in names if name not in reports})
                    break
                # A process that died without a word: whatever it sent was in the pipe before
                # it exited, so once it has been dead for a while no report is coming.
                for name, proc in procs.items():
                    if proc.exitcode is not None and name not in reports:
                        died = exited.setdefault(name, time.monotonic())
                        if time.monotonic() - died > EXIT_GRACE:
                            errors[name] = f"process exited with code {proc.exitcode}"
                try:
                    kind, name, payload = events.get(timeout=0.1)
                except queue.Empty:
                    kind, name, payload = "", "", None
                if kind == "ready":
                    ready.add(name)
                    if ready == set(names):
                        start.set()
                        began = time.perf_counter()
                        deadline = time.monotonic() + run_timeout
                elif kind == "progress":
                    progress.update(tasks[name], completed=payload[0], note=payload[1])
                    if payload[2] is not None:
                        latest[name] = payload[2]
                elif kind == "done":
                    reports[name] = payload
                elif kind == "error":
                    errors[name] = str(payload)
                if director is not None and start.is_set():
                    director(latest)
        elapsed = time.perf_counter() - began
        finished = not errors
    finally:
        _stop(list(procs.values()), graceful=finished)
        events.close()
    return reports, [f"{name}: {error}" for name, error in errors.items()], elapsed


def _stop(procs: list[SpawnProcess], *, graceful: bool) -> None:
    """Join every process; terminate, then kill, whatever does not exit in time."""
    for proc in procs:
        if proc.pid is None:
            continue  # never started
        proc.join(JOIN_TIMEOUT if graceful else 0.1)
        if proc.is_alive():
            proc.terminate()
            proc.join(JOIN_TIMEOUT)
        if proc.is_alive():
            proc.kill()
            proc.join()


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (0.0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(len(ordered) * pct / 100)) - 1]


def failed(console: Console, problems: list[str]) -> bool:
    """Print what went wrong on one FAILED line; return False, for ``return failed(...)``."""
    console.print(f"[bold red]FAILED:[/] {'; '.join(problems)}", soft_wrap=True)
    return False
