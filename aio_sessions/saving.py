"""How a request's session is written back: a new record, or a merge or touch of the stored
one, and which cookie the response carries afterwards."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .session import Session, pending_of, record_of, start_over
from .stores.base import Changes

if TYPE_CHECKING:
    from .manager import SessionManager


async def save_new(manager: SessionManager, session: Session, *, ended: bool) -> None:
    """Store a session that is not stored yet, if it holds anything; index it by its user."""
    record = record_of(session)
    pending = pending_of(session)
    wanted = record.data or pending.changed or pending.touch or manager.config.save_uninitialized
    if not wanted:
        # Only a session this request ended loses its cookie: an unknown or stale id on a
        # request that wrote nothing is left alone, as it may be a newer cookie's neighbour
        # (same-name cookies) or a poll that raced a login.
        if ended:
            pending.cookie = ""
        return
    now = time.time()
    record.accessed = now
    # Indexed once stored (a SQLite row must exist first); a failed link fails the
    # request, whose browser then never learns of the session.
    link = manager.users.due(record, now, wrote_user=True)
    value = await manager.store.save(record, None, manager.ttl_at(now))
    if value is None:  # a store refuses only merges, never a fresh record
        raise RuntimeError(f"{type(manager.store).__name__}.save refused a new session")
    if link is not None:
        await manager.store.link_user(*link)
        await manager.devices.cap(record)
    if manager.store.stateless:
        manager.transport.check_size(value)
    # No cookie when the browser has the id already: announced on a socket's 101.
    pending.saved(value, resend=False)


async def save_existing(manager: SessionManager, session: Session, changes: Changes | None) -> None:
    """Merge changes (or, with None, only extend the lifetime) into the stored record."""
    record = record_of(session)
    now = time.time()
    record.accessed = now
    wrote_user = changes is not None and manager.config.user_key in changes.set
    await manager.users.renew(record, now, wrote_user=wrote_user)
    if changes is None:
        value = await manager.store.touch(record, manager.ttl_at(now))
    else:
        value = await manager.store.save(record, changes, manager.ttl_at(now))
    if value is None:
        # Ended by someone else meanwhile (a logout, a login's regenerate): do not bring
        # it back, and send no cookie, which could only delete the newer one.
        start_over(session)
        return
    if manager.store.stateless:
        manager.transport.check_size(value)
    else:
        # The stored max_age may be longer than this request knew: renew on that.
        await manager.users.renew(record, now, wrote_user=False)
    if changes is not None:
        await manager.sockets.changes.saved(session, record, changed_keys(changes))
        if wrote_user:
            await manager.devices.cap(record)
    config = manager.config
    pending = pending_of(session)
    resend = (
        config.rolling
        or pending.touch
        or session.max_age is not None  # the server extended it: so must the browser
        or (changes is None and config.renew)
    )
    pending.saved(value, resend=resend)


def changed_keys(changes: Changes) -> frozenset[str]:
    """The keys a merge set or removed."""
    return frozenset(changes.set) | changes.removed
