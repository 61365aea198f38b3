"""Sockets closed when their session ends: a timer for each socket whose session ends soon,
and a sweep for the others, which also renews the sockets' watch leases."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from .errors import StoreUnavailable
from .registry import CLOSE_SESSION_EXPIRED
from .session import session_info

if TYPE_CHECKING:
    from .manager import SessionManager
    from .registry import Binding, SocketRegistry

# Sockets whose session ends within this many seconds get a timer; the others, the sweep.
_HORIZON = 120.0


class Expiry:
    """The expiry of one registry's sockets (package-internal).

    Most sessions end days away, and one timer per socket for those would only fill the
    event loop's heap: only deadlines within the horizon get a timer, and a sweep every half
    horizon gives one to the sockets whose deadline came near. At the deadline the store is
    asked, since HTTP requests may have extended the session meanwhile.
    """

    def __init__(self, registry: SocketRegistry, manager: SessionManager) -> None:
        self._registry = registry
        self._manager = manager
        self._sweeper: asyncio.Task[None] | None = None

    def schedule(self, binding: Binding, deadline: float) -> None:
        """A timer for a deadline within the horizon; the sweep covers later ones."""
        binding.deadline = deadline
        binding.timer = None
        if deadline == math.inf:
            return
        delay = deadline - time.time()
        if delay <= _HORIZON:
            loop = asyncio.get_running_loop()
            binding.timer = loop.call_later(max(delay, 0.05), self._due, binding)
        elif self._sweeper is None:
            self.sweep()

    def sweep(self) -> None:
        """Start the sweep, unless it runs already."""
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Every half horizon, give a timer to the sockets whose deadline came near, and
        renew the watch leases that are due."""
        registry = self._registry
        changes = registry.changes
        while True:
            await asyncio.sleep(_HORIZON / 2)
            now = time.time()
            for binding in registry.every_binding():
                if binding.timer is None and binding.deadline - now <= _HORIZON:
                    self.schedule(binding, binding.deadline)
                if changes.watch_due(binding.session):
                    registry.spawn(changes.watch(binding.session))

    def _due(self, binding: Binding) -> None:
        if self._registry.binding(binding.ws) is binding:
            self._registry.spawn(self._check(binding))

    async def _check(self, binding: Binding) -> None:
        """At the deadline, ask the store: HTTP requests may have extended the session."""
        manager = self._manager
        session = binding.session
        deadline: float | None = session.expires_at or math.inf
        if not manager.store.stateless and not session.new:
            try:
                deadline = await manager.expires_at(session.id)
            except StoreUnavailable:
                self.schedule(binding, time.time() + 5)
                return
        if deadline is None or deadline <= time.time():
            self._registry.close([binding], CLOSE_SESSION_EXPIRED)
            info = session_info(session)
            if info is not None:
                manager.devices.announce(info, "expired")
        else:
            self.schedule(binding, deadline)

    async def stop(self) -> None:
        """Stop the sweep and cancel the timers."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        for binding in self._registry.every_binding():
            if binding.timer is not None:
                binding.timer.cancel()
