"""NaClCookieStore: cookies interchangeable with aiohttp-session's NaClCookieStorage both ways,
key rotation, hostile cookies, the size limit, and the message when PyNaCl is missing."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp_session.nacl_storage import NaClCookieStorage
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.encoding import Base64Encoder
from nacl.secret import SecretBox

from aio_sessions import (
    CookieTooLarge,
    EncryptedCookieStore,
    NaClCookieStore,
    get_manager,
    get_session,
)

from .conftest import (
    MakeClient,
    aiohttp_session_client,
    import_without,
    replay,
    send_cookie,
    session_cookie,
)

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

Client = TestClient[web.Request, web.Application]

RAW_KEY = os.urandom(32)
FERNET_KEY = Fernet.generate_key().decode()
DAY = 24 * 3600


async def theirs_client(aiohttp_client: Any, key: bytes, **options: Any) -> Any:
    return await aiohttp_session_client(aiohttp_client, NaClCookieStorage(key, **options))


def opened(token: str, key: bytes) -> dict[str, Any]:
    """What a cookie holds, opened as aiohttp-session opens it."""
    plain = SecretBox(key).decrypt(token.encode(), encoder=Base64Encoder)
    doc: dict[str, Any] = json.loads(plain)
    return doc


def sealed(doc: dict[str, Any], key: bytes) -> str:
    """A cookie as aiohttp-session's NaClCookieStorage seals one."""
    return SecretBox(key).encrypt(json.dumps(doc).encode(), encoder=Base64Encoder).decode()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(RAW_KEY, RAW_KEY), (FERNET_KEY, base64.urlsafe_b64decode(FERNET_KEY))],
    ids=["32-raw-bytes", "fernet-key-text"],
)
async def test_cookies_interchangeable_both_ways(
    aiohttp_client: Any, make_client: MakeClient, ours: str | bytes, theirs: bytes
) -> None:
    their_app = await theirs_client(aiohttp_client, theirs)
    our_app = await make_client(store=NaClCookieStore(ours))

    await their_app.get("/", params={"set": "user", "value": "alice"})
    their_cookie = session_cookie(their_app)
    assert await replay(our_app, "/read", their_cookie) == {"data": {"user": "alice"}, "new": False}

    resp = await send_cookie(our_app, "/count", their_cookie)
    assert await resp.json() == {"user": "alice", "n": 1}
    our_cookie = resp.cookies["AIOHTTP_SESSION"].value
    resp = await their_app.get("/", cookies={"AIOHTTP_SESSION": our_cookie})
    assert await resp.json() == {"user": "alice", "n": 1}
    # ...and what aiohttp-session wrote on top of ours reads here again.
    resp = await their_app.get(
        "/", params={"set": "via", "value": "theirs"}, cookies={"AIOHTTP_SESSION": our_cookie}
    )
    back = resp.cookies["AIOHTTP_SESSION"].value
    expected = {"user": "alice", "n": 1, "via": "theirs"}
    assert (await replay(our_app, "/read", back))["data"] == expected


async def test_wire_format(make_client: MakeClient) -> None:
    """Standard base64 of a fresh 24-byte nonce and the box, aiohttp-session's JSON inside."""
    client = await make_client(store=NaClCookieStore(RAW_KEY))
    tokens = []
    for _ in range(2):
        await client.get("/count")
        tokens.append(session_cookie(client))
    boxes = [base64.b64decode(token, validate=True) for token in tokens]
    assert boxes[0][: SecretBox.NONCE_SIZE] != boxes[1][: SecretBox.NONCE_SIZE]
    doc = opened(tokens[1], RAW_KEY)
    assert doc["session"] == {"n": 2}
    assert isinstance(doc["created"], int)
    assert doc["id"] == opened(tokens[0], RAW_KEY)["id"]  # one session, two cookies


async def test_key_rotation(make_client: MakeClient) -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = await make_client(store=NaClCookieStore(old))
    await before.get("/count")
    old_cookie = session_cookie(before)

    rotated = await make_client(store=NaClCookieStore([new, old]))
    resp = await send_cookie(rotated, "/count", old_cookie)
    assert await resp.json() == {"n": 2}  # still logged in
    new_cookie = resp.cookies["AIOHTTP_SESSION"].value
    assert opened(new_cookie, new)["session"] == {"n": 2}  # sealed with the first key

    only_old = await make_client(store=NaClCookieStore(old))
    assert await replay(only_old, "/read", new_cookie) == {"data": {}, "new": True}


async def test_tampered_truncated_and_foreign_cookies(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(store=NaClCookieStore(RAW_KEY))
    await client.get("/count")
    token = session_cookie(client)
    box = bytearray(base64.b64decode(token))
    box[30] ^= 1
    flipped = base64.b64encode(bytes(box)).decode()
    doc = {"created": int(time.time()), "session": {"admin": True}}
    bad = {
        "a flipped bit": flipped,
        "truncated": token[:-8],
        "the nonce alone": base64.b64encode(bytes(24)).decode(),
        "another key's": sealed(doc, os.urandom(32)),
        "not base64": "!" * 60,
        "urlsafe base64": token.replace("+", "-").replace("/", "_") + "-_",
        "a Fernet token": Fernet(Fernet.generate_key()).encrypt(b"{}").decode(),
        "huge": "A" * 3000,
    }
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        for name, cookie in bad.items():
            resp = await send_cookie(client, "/count", cookie)
            assert resp.status == 200, name
            assert await resp.json() == {"n": 1}, name
    assert "cannot decrypt" in caplog.text


async def test_a_sealed_record_that_is_not_one_is_a_fresh_session(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The right key, but no record inside: a fresh session and a warning, never a 500."""
    client = await make_client(store=NaClCookieStore(RAW_KEY))
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        for doc in (
            {"session": {}},
            {"created": "soon", "session": {}},
            {"created": 1, "session": []},
        ):
            assert await replay(client, "/read", sealed(doc, RAW_KEY)) == {"data": {}, "new": True}
    assert "corrupt session cookie" in caplog.text


TAMPERING = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def sealed_session(make_client: MakeClient) -> tuple[Client, str]:
    """One server for all the examples, and a real cookie of it whose session has n=1."""
    client = await make_client(store=NaClCookieStore(RAW_KEY))
    await client.get("/count")
    return client, session_cookie(client)


@TAMPERING
@given(data=st.data())
async def test_any_change_to_a_cookie_is_a_fresh_session(
    sealed_session: tuple[Client, str], data: st.DataObject
) -> None:
    """Any bit flipped, any cut, anything appended: never the session, never a 500."""
    client, token = sealed_session
    box = bytearray(base64.b64decode(token))
    change = data.draw(st.sampled_from(["flip", "cut", "append"]))
    if change == "flip":
        at = data.draw(st.integers(0, len(box) - 1))
        box[at] ^= data.draw(st.integers(1, 255))
    elif change == "cut":
        box = box[: data.draw(st.integers(0, len(box) - 1))]
    else:
        box += data.draw(st.binary(min_size=1, max_size=40))
    resp = await send_cookie(client, "/count", base64.b64encode(bytes(box)).decode())
    assert resp.status == 200
    assert await resp.json() == {"n": 1}


async def test_their_cookies_are_aged_from_created(
    aiohttp_client: Any, make_client: MakeClient
) -> None:
    """A NaCl box has no timestamp: a cookie aiohttp-session wrote (which records no activity
    time) lives ``max_age`` from its ``created``, as aiohttp-session itself decides."""
    three_days_old = sealed(
        {"created": int(time.time() - 3 * DAY), "session": {"user": "alice"}}, RAW_KEY
    )
    week = await make_client(store=NaClCookieStore(RAW_KEY), max_age=7 * DAY)
    assert (await replay(week, "/read", three_days_old))["data"] == {"user": "alice"}
    day = await make_client(store=NaClCookieStore(RAW_KEY), max_age=DAY)
    assert (await replay(day, "/read", three_days_old))["data"] == {}
    theirs = await theirs_client(aiohttp_client, RAW_KEY, max_age=DAY)
    resp = await theirs.get("/", cookies={"AIOHTTP_SESSION": three_days_old})
    assert await resp.json() == {}  # aiohttp-session agrees


async def test_oversized_session_fails_at_save(make_client: MakeClient) -> None:
    async def explicit(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["blob"] = "x" * 4000
        try:
            await session.save()
        except CookieTooLarge as exc:
            del session["blob"]
            return web.Response(text=str(exc))
        return web.Response(text="saved?")

    async def implicit(request: web.Request) -> web.Response:
        (await get_session(request))["blob"] = "y" * 5000
        return web.Response()

    client = await make_client(
        ("GET", "/explicit", explicit),
        ("GET", "/implicit", implicit),
        store=NaClCookieStore(RAW_KEY),
    )
    assert "4096" in await (await client.get("/explicit")).text()
    resp = await client.get("/implicit")
    assert resp.status == 500
    assert "AIOHTTP_SESSION" not in resp.headers.get("Set-Cookie", "")


def test_bad_keys_never_show_the_key() -> None:
    secret = "s3cr3t-" * 6
    for bad in (
        os.urandom(16),
        os.urandom(33),
        secret,
        base64.urlsafe_b64encode(os.urandom(16)),
        base64.urlsafe_b64encode(os.urandom(32)).decode() + "!",
        [],
        [RAW_KEY, b"short"],
    ):
        with pytest.raises(ValueError, match="key") as caught:
            NaClCookieStore(bad)
        assert secret not in str(caught.value)
    for wrong in (42, None, 3.5):
        with pytest.raises(TypeError, match="secret_key"):
            NaClCookieStore(wrong)  # type: ignore[arg-type]


def test_key_forms() -> None:
    """32 raw bytes, their urlsafe-base64 text (str or bytes), or a SecretBox."""
    text = base64.urlsafe_b64encode(RAW_KEY)
    for key in (RAW_KEY, bytearray(RAW_KEY), text, text.decode(), SecretBox(RAW_KEY)):
        store = NaClCookieStore(key)
        assert store._open(sealed({"created": 1, "session": {}}, RAW_KEY)) is not None


def test_cookie_options_belong_to_setup() -> None:
    with pytest.raises(TypeError, match=r"setup\(app, NaClCookieStore\(secret_key\), max_age=60\)"):
        NaClCookieStore(RAW_KEY, max_age=60)  # type: ignore[call-arg]


async def test_server_side_operations_are_refused(make_client: MakeClient) -> None:
    store = NaClCookieStore(RAW_KEY)
    for operation in (store.count(), store.clear(), store.user_sessions("alice")):
        with pytest.raises(TypeError, match="NaClCookieStore keeps sessions in cookies"):
            await operation
    client = await make_client(store=store)
    with pytest.raises(TypeError, match="by id"):
        await get_manager(client.app).delete("x" * 43)


async def test_a_fernet_cookie_is_not_a_nacl_cookie(make_client: MakeClient) -> None:
    """Switching from EncryptedCookieStore to NaClCookieStore starts everyone afresh."""
    fernet = await make_client(store=EncryptedCookieStore(FERNET_KEY))
    await fernet.get("/count")
    nacl = await make_client(store=NaClCookieStore(FERNET_KEY))
    assert await replay(nacl, "/read", session_cookie(fernet)) == {"data": {}, "new": True}


def test_missing_pynacl_names_the_extra() -> None:
    assert "pip install 'aio-sessions[nacl]'" in import_without("nacl", "NaClCookieStore")
