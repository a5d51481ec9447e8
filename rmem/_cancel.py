"""A cancellation that redis-py's asyncio API can drop on Python 3.11, raised again.

redis-py sends every command through ``asyncio.wait_for`` when a socket timeout is set (rmem
always sets one), and so does its connection handshake. On Python 3.11, ``wait_for`` returns
the result of an awaitable that finished in the same loop step as the task was cancelled, and
the ``CancelledError`` is lost (CPython gh-86296, fixed in 3.12). A task cancelled at that
moment runs on as if nothing happened: a loop around rmem calls never stops, and whatever
awaits its end waits forever. The running task still counts the request
(:meth:`asyncio.Task.cancelling`), so rmem compares the count before and after those awaits.
rmem's round trips now write through :func:`rmem._wire.asend_packed`, without ``wait_for``,
but a new connection's handshake is still redis-py's, and the check stays on both.

A synchronous call cannot lose a cancellation, so ``scripts/unasync.py`` leaves these calls
out of the generated sync code.
"""

from __future__ import annotations

import asyncio
from typing import Any

CancelMark = tuple[Any, int]  # (the running task or None, its pending cancellations)


def cancel_mark() -> CancelMark:
    """The running task (None outside one) and how many cancellations of it are pending."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop
        return None, 0
    return task, 0 if task is None else task.cancelling()


def raise_lost_cancel(mark: CancelMark) -> None:
    """Raise ``CancelledError`` if the task was cancelled since :func:`cancel_mark` gave
    ``mark`` and the cancellation never reached it."""
    task, before = mark
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
