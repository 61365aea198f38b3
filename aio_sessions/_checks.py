"""Argument checks whose errors name the value, its type and what to write instead.

A wrong type raises TypeError, a value of the right type that cannot work ValueError, both
where the argument is given (``setup``, a store's constructor), never on a later request.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence, Sized

#: aiohttp-session's storage arguments that are ``setup()`` options here.
COOKIE_OPTIONS = ("cookie_name", "domain", "max_age", "path", "secure", "httponly", "samesite")

# Names other libraries (mostly aiohttp-session's storages) use, with what to write here.
_HINTS = {
    "encoder": (
        "the encoder belongs to the store (every store takes one, as aiohttp-session's "
        "storages do): e.g. RedisStore(client, encoder=...)"
    ),
    "decoder": (
        "the decoder belongs to the store (every store takes one, as aiohttp-session's "
        "storages do): e.g. RedisStore(client, decoder=...)"
    ),
    "key_factory": "ids come from setup(app, store, id_factory=...), a callable returning one",
    "storage": "pass the store as the second argument: setup(app, store)",
    "secret_key": (
        "a cookie store's key belongs to it: setup(app, EncryptedCookieStore(secret_key)); "
        "secret=... signs the ids of a server-side store"
    ),
    "redis_pool": "the client belongs to the store: setup(app, RedisStore(client))",
    "expires": "the cookie lifetime is max_age, in seconds: max_age=3600",
    "timeout": "write idle_timeout=1800 (seconds without a request) or absolute_timeout=86400",
}

_MAX_SHOWN = 100
# The password of a URL such as redis://user:password@host, kept out of messages.
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")
# Names whose values are kept out of messages, whatever the caller says.
_SECRET_NAME = re.compile(r"secret|passw", re.IGNORECASE)


def describe(name: str, value: object, expected: str, fix: str, *, secret: bool = False) -> str:
    """The one form of every argument error: ``name=value (type): expected ..., fix``.

    ``secret`` (implied by a name such as ``secret_key`` or ``password``) hides the value and
    shows only its length; passwords in URLs are hidden too.
    """
    if not (secret or _SECRET_NAME.search(name)):
        shown = _URL_PASSWORD.sub(r"\1***@", repr(value))
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 3] + "..."
    elif isinstance(value, Sized):
        shown = f"<hidden, length {len(value)}>"
    else:
        shown = "<hidden>"
    if isinstance(value, type):
        shown, kind = value.__qualname__, "class"
    elif type(value).__module__ == "builtins":
        kind = type(value).__qualname__
    else:
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
    return f"{name}={shown} ({kind}): expected {expected}, {fix}"


def unknown_option(
    owner: str, name: str, value: object, valid: Sequence[str], otherwise: str
) -> TypeError:
    """The error for an option ``owner`` does not take: a pointed hint, the closest valid
    name, or ``otherwise``."""
    hint = _HINTS.get(name)
    if hint is None:
        close = difflib.get_close_matches(name, valid, n=1) or [v for v in valid if name in v]
        example = "..." if _SECRET_NAME.search(name) else repr(value)
        hint = f"did you mean {close[0]}={example}?" if close else otherwise
    expected = f"an option of {owner}: {', '.join(valid)}" if valid else f"an option of {owner}"
    return TypeError(describe(name, value, expected, hint))


def refuse_options(
    store: str, options: Mapping[str, object], valid: Sequence[str] | None = ()
) -> None:
    """Refuse options given to a store's constructor ``store`` (a call such as
    ``"RedisStore(client)"``) that belong elsewhere: aiohttp-session's storages take the
    cookie options, ours leave them to ``setup()``.

    ``valid`` names the keywords the constructor takes; None lets other names pass on.
    """
    cookie = {name: value for name, value in options.items() if name in COOKIE_OPTIONS}
    if cookie:
        name, value = next(iter(cookie.items()))
        moved = ", ".join(f"{k}={v!r}" for k, v in cookie.items())
        expected = f"in setup(), which takes the cookie options, not in {store}"
        raise TypeError(describe(name, value, expected, f"e.g. setup(app, {store}, {moved})"))
    owner = store.split("(")[0] + "()"
    for name, value in options.items():
        if valid is not None or name in _HINTS:
            otherwise = "cookie and timeout options go to setup(): see docs/options.md"
            raise unknown_option(owner, name, value, valid or (), otherwise)


def check_positive(
    name: str, value: object, *, whole: bool, unit: str, example: str, optional: bool = True
) -> None:
    """A positive, finite number of ``unit`` (a whole one when ``whole``), or None."""
    if value is None and optional:
        return
    expected = f"a positive {'whole ' if whole else ''}number of {unit}"
    if optional:
        expected += " or None"
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(describe(name, value, expected, f"e.g. {example}"))
    if not 0 < value < math.inf:  # also refuses NaN
        raise ValueError(describe(name, value, expected, f"e.g. {example}"))


def check_bool(name: str, value: object, *, optional: bool = False) -> None:
    """True or False (or None when ``optional``)."""
    if isinstance(value, bool) or (optional and value is None):
        return
    expected = "True, False or None" if optional else "True or False"
    raise TypeError(describe(name, value, expected, f"e.g. {name}=True"))


def check_str(name: str, value: object, example: str, *, optional: bool = False) -> None:
    """A string (or None when ``optional``)."""
    if isinstance(value, str) or (optional and value is None):
        return
    expected = "a string or None" if optional else "a string"
    raise TypeError(describe(name, value, expected, f"e.g. {example}"))


def check_path(name: str, value: object, example: str) -> None:
    """A file system path: a non-empty ``str`` or ``os.PathLike``."""
    expected = "a path (str or pathlib.Path)"
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(describe(name, value, expected, f"e.g. {example}"))
    if not os.fspath(value):
        raise ValueError(describe(name, value, "a non-empty path", f"e.g. {example}"))
