"""A cancellation that redis-py's asyncio API can drop on Python 3.11, raised again.

redis-py sends every command through ``asyncio.wait_for`` when a socket timeout is set (rmem
always sets one), and so does its connection handshake. On Python 3.11, ``wait_for`` returns
the result of an awaitable that finished in the same loop step as the task was cancelled, and
the ``CancelledError`` is lost (CPython gh-86296, fixed in 3.12). A task cancelled at that
moment runs on as if nothing happened: a loop around rmem calls never stops, and whatever
awaits its end waits forever. The running task still counts the request
(:meth:`asyncio.Task.cancelling`), so rmem compares the count before and after those awaits.

Both helpers are cheap (no-ops outside a task) and safe in the generated sync code: a
synchronous call cannot lose a cancellation, so the count never grows during one.
"""

from __future__ import annotations

import asyncio


def cancels_requested() -> int:
    """How many cancellations of the running task are pending (0 outside a task)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop
        return 0
    return 0 if task is None else task.cancelling()


def raise_lost_cancel(before: int) -> None:
    """Raise ``CancelledError`` if the running task was cancelled since :func:`cancels_requested`
    gave ``before`` and the cancellation never reached it."""
    if cancels_requested() > before:
        raise asyncio.CancelledError
