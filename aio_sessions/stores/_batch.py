"""Requests for a store made in the same event-loop turn, sent together by one task.

Many requests in flight at once each need a command: sent one by one, each costs a round trip,
a pooled connection and redis-py's per-command overhead. Gathered per loop turn, they share
one (an MGET, a pipeline), and a request alone still sends exactly its own command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class TurnBatch(Generic[_Item, _Result]):
    """Items submitted while a batch waits to start, handed together to ``send``.

    ``send`` gets the items in order and returns one outcome for each: a value, or an
    exception for that item's waiter alone. If ``send`` raises, every waiter of the batch gets
    the error. Each batch runs in a task of its own (kept in ``tasks`` until done), so a
    cancelled waiter cannot strand the others.
    """

    def __init__(
        self,
        send: Callable[[list[_Item]], Awaitable[Sequence[_Result | Exception]]],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._send = send
        self._tasks = tasks
        self._items: list[_Item] = []
        self._futures: list[asyncio.Future[_Result]] = []

    def submit(self, item: _Item) -> asyncio.Future[_Result]:
        """The outcome of ``item``, sent with whatever else is submitted before the batch
        task first runs (the next loop iteration)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        if not self._items:
            task = loop.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._items.append(item)
        self._futures.append(future)
        return future

    async def _run(self) -> None:
        items, futures = self._items, self._futures
        self._items, self._futures = [], []
        try:
            outcomes = await self._send(items)
        except BaseException as exc:
            for future in futures:
                settle(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, outcome in zip(futures, outcomes, strict=True):
            settle(future, outcome)


def settle(future: asyncio.Future[_Result], outcome: _Result | BaseException) -> None:
    """Give a waiter its outcome, a value or an exception, unless it gave up (a timeout)."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
