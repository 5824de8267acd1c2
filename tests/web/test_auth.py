"""Sign-in, sessions, CSRF and roles (cosmo/web/auth.py, cosmo/web/settings.py) against a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from cosmo.store.web import WebUserRepository
from cosmo.web.auth import CSRF_HEADER, SESSION_COOKIE, LoginThrottle
from cosmo.web.cti_streams import CLOSE_SESSION
from cosmo.web.settings import WebSettings
from tests.web.test_cti_harness import API_TOKEN, PASSWORDS, CtiClient, harness


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=10))


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        try:
            body = await response.json()
        except (aiohttp.ContentTypeError, ValueError):
            body = await response.text()
        return response.status, body


async def test_wrong_passwords_and_unknown_users_are_refused_alike(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, client() as session:
        for username, password in (("1001", "nope"), ("nobody", "ada-secret"), ("1001", PASSWORDS["1002"])):
            status, body = await call(session, "POST", f"{h.url}/ui/login",
                                      json={"username": username, "password": password})
            assert (status, body) == (401, {"error": "wrong user name or password"})
        assert not any(c.key == SESSION_COOKIE for c in session.cookie_jar)
        status, body = await call(session, "POST", f"{h.url}/ui/login", json={"username": "1001"})
        assert (status, body) == (400, {"error": "give a user name and a password"})
        status, body = await call(session, "POST", f"{h.url}/ui/login", data=b"{nope")
        assert (status, body) == (400, {"error": "body is not valid JSON"})


async def test_a_sign_in_sets_a_strict_http_only_cookie(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, client() as session:
        async with session.post(f"{h.url}/ui/login", json={"username": "1001", "password": PASSWORDS["1001"]}) as r:
            assert r.status == 200
            body = await r.json()
            cookie = r.cookies[SESSION_COOKIE]
        assert body["user"] == {"username": "1001", "name": "Ada Lovelace", "role": "agent", "extension": "1001"}
        assert body["home"] == "/desk" and len(body["csrf"]) >= 40
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert not cookie["secure"] and int(cookie["max-age"]) == 12 * 3600
        status, me = await call(session, "GET", f"{h.url}/ui/me")
        assert status == 200 and me["csrf"] == body["csrf"] and me["user"]["extension"] == "1001"
        assert me["dispositions"][0] == "resolved" and "break" in me["reasons"]
        # The store keeps the SHA-256 of the cookie, never the cookie.
        stored = await h.store.sessions.get(cookie.value)
        assert stored is None


async def test_state_changes_need_the_csrf_token(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        session = await h.session("1001")
        token = session.headers.pop(CSRF_HEADER)
        try:
            for method, path, body in (("PATCH", "/ui/customers/1", {"notes": "changed"}),
                                       ("POST", "/ui/logout", None)):
                status, answer = await call(session, method, f"{h.url}{path}", json=body)
                assert (status, answer) == (403, {"error": "missing or invalid CSRF token (send the X-CSRF-Token "
                                                           "header)"})
                status, answer = await call(session, method, f"{h.url}{path}", json=body,
                                            headers={CSRF_HEADER: "not-the-token"})
                assert status == 403
            customer = await h.customers.find("id", "1")
            assert customer is not None and customer.notes != "changed"
            status, answer = await call(session, "PATCH", f"{h.url}/ui/customers/1", json={"notes": "changed"},
                                        headers={CSRF_HEADER: token})
            assert status == 200 and answer["customer"]["notes"] == "changed"
            # Reading needs no token.
            status, _ = await call(session, "GET", f"{h.url}/ui/customers/1")
            assert status == 200
        finally:
            await session.close()


async def test_roles_on_pages_and_calls(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        agent = await h.session("1001")
        supervisor = await h.session("sup")
        admin = await h.session("admin")
        try:
            expected = {
                (agent, "/desk"): 200, (agent, "/wallboard"): 403, (agent, "/admin"): 403, (agent, "/customers/1"): 200,
                (supervisor, "/desk"): 403, (supervisor, "/wallboard"): 200, (supervisor, "/admin"): 403,
                (admin, "/wallboard"): 200, (admin, "/admin"): 200, (admin, "/desk"): 403,
            }
            for (session, path), status in expected.items():
                got, _ = await call(session, "GET", f"{h.url}{path}")
                assert got == status, (path, got)
            status, page = await call(agent, "GET", f"{h.url}/wallboard")
            assert status == 403 and '<a href="/desk">Back to your page</a>' in page
            status, body = await call(agent, "POST", f"{h.url}/ui/kb", json={"title": "x"})
            assert (status, body) == (403, {"error": "agent may not do this"})
            status, body = await call(supervisor, "DELETE", f"{h.url}/ui/kb/1")
            assert (status, body) == (403, {"error": "supervisor may not do this"})
            status, body = await call(admin, "POST", f"{h.url}/ui/kb", json={"title": "New", "tags": ["A ", "a"]})
            assert status == 201 and body["article"]["tags"] == ["a"]
            for session, home in ((agent, "/desk"), (supervisor, "/wallboard"), (admin, "/wallboard")):
                async with session.get(f"{h.url}/", allow_redirects=False) as response:
                    assert (response.status, response.headers["Location"]) == (303, home)
        finally:
            for session in (agent, supervisor, admin):
                await session.close()


async def test_nobody_signed_in(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, client() as session:
        async with session.get(f"{h.url}/desk", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/login?next=/desk")
        async with session.get(f"{h.url}/", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/login")
        for method, path in (("GET", "/ui/me"), ("GET", "/ui/kb"), ("PATCH", "/ui/customers/1"), ("GET", "/cti")):
            status, body = await call(session, method, f"{h.url}{path}")
            assert (status, body) == (401, {"error": "sign in first"}), path
        status, page = await call(session, "GET", f"{h.url}/login")
        assert status == 200 and 'id="login"' in page
        status, _ = await call(session, "GET", f"{h.url}/static/js/desk.js")
        assert status == 200
        # The bearer API is untouched, and its tokens do not open the people's pages.
        status, _ = await call(session, "GET", f"{h.url}/api/queues")
        assert status == 401
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        status, _ = await call(session, "GET", f"{h.url}/api/queues", headers=auth)
        assert status == 200
        status, body = await call(session, "GET", f"{h.url}/ui/customers/1", headers=auth)
        assert (status, body) == (403, {"error": "integration may not do this"})


async def test_other_sites_cannot_sign_in_or_open_the_socket(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        async with client() as session:
            status, body = await call(session, "POST", f"{h.url}/ui/login", headers={"Origin": "https://evil.example"},
                                      json={"username": "1001", "password": PASSWORDS["1001"]})
            assert (status, body) == (403, {"error": "cross-site sign-in refused"})
        session = await h.session("1001")
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(h.ws_url, headers={"Origin": "https://evil.example"})
            assert refused.value.status == 403
            ws = await session.ws_connect(h.ws_url, headers={"Origin": h.url})
            assert (await ws.receive_json())["type"] == "welcome"
            await ws.close()
        finally:
            await session.close()


async def test_repeated_failures_block_the_address(tmp_path: Path) -> None:
    async with harness(tmp_path, web={"login_max_failures": 3, "login_block_s": 30}) as h, client() as session:
        for _ in range(3):
            status, _ = await call(session, "POST", f"{h.url}/ui/login", json={"username": "1001", "password": "x"})
            assert status == 401
        async with session.post(f"{h.url}/ui/login",
                                json={"username": "1001", "password": PASSWORDS["1001"]}) as response:
            assert response.status == 429 and int(response.headers["Retry-After"]) > 0
            assert (await response.json())["error"].startswith("too many failed sign-ins; try again in ")


def test_throttle_forgets_after_the_block() -> None:
    now = [0.0]
    throttle = LoginThrottle(lambda: 2, lambda: 10.0, clock=lambda: now[0])
    throttle.failed("a")
    now[0] = 11.0
    throttle.failed("a")  # the first failure is out of the window
    assert throttle.blocked_for("a") == 0
    throttle.failed("a")
    assert throttle.blocked_for("a") == pytest.approx(10.0)
    assert throttle.blocked_for("b") == 0
    now[0] = 22.0
    assert throttle.blocked_for("a") == 0


async def test_plain_passwords_are_stored_as_argon2_hashes(tmp_path: Path) -> None:
    async with harness(tmp_path, hashed=False) as h, client() as session:
        users = {u.username: u for u in await WebUserRepository(h.database).all()}
        assert set(users) == {"1001", "1002", "admin", "sup"}
        for name, user in users.items():
            assert user.password_hash.startswith("$argon2id$") and PASSWORDS[name] not in user.password_hash
            assert PasswordHasher().verify(user.password_hash, PASSWORDS[name])
        status, _ = await call(session, "POST", f"{h.url}/ui/login",
                               json={"username": "sup", "password": PASSWORDS["sup"]})
        assert status == 200
        # A reload with the same passwords keeps the hashes; a removed user's sessions end.
        before = users["1002"].password_hash
        settings = h.web_settings.model_copy(update={"users": [u for u in h.web_settings.users
                                                               if u.username != "sup"]})
        h.desk.services.settings = lambda: settings
        assert await h.desk.reload() == ["sup"]
        after = {u.username: u for u in await WebUserRepository(h.database).all()}
        assert after["1002"].password_hash == before and "sup" not in after
        status, body = await call(session, "GET", f"{h.url}/ui/me")
        assert (status, body) == (401, {"error": "sign in first"})


async def test_sessions_survive_a_restart_of_the_desk(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        session = await h.session("1002")
        try:
            h.desk.sessions._cache.clear()  # as after a restart: only the store knows the session
            status, me = await call(session, "GET", f"{h.url}/ui/me")
            assert status == 200 and me["user"]["username"] == "1002"
        finally:
            await session.close()


def test_settings_are_checked() -> None:
    hashed = PasswordHasher().hash("x")

    def problems(data: dict[str, Any]) -> list[str]:
        with pytest.raises(ValidationError) as refused:
            WebSettings.model_validate(data)
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in refused.value.errors()]

    assert problems({"users": [{"username": "a", "role": "agent", "password": "x"}]}) == [
        "users.0: Value error, user a: an agent needs the extension it works as"]
    assert problems({"users": [{"username": "s", "role": "supervisor", "password": "x", "extension": "1"}]}) == [
        "users.0: Value error, user s: only agents have an extension"]
    assert problems({"users": [{"username": "a", "role": "admin", "password": "$argon2id$v=19$nonsense"}]}) == [
        "users.0.password: Value error, looks like an Argon2 hash but is not a valid one"]
    assert problems({"users": [{"username": "a", "role": "admin", "password": "x"},
                               {"username": "a", "role": "admin", "password": "y"}]}) == [
        ": Value error, user a is defined twice"]
    assert problems({"users": [{"username": "a", "role": "agent", "password": "x", "extension": "1"},
                               {"username": "b", "role": "agent", "password": "x", "extension": "1"}]}) == [
        ": Value error, users a and b both work as extension 1"]
    assert problems({"heartbeat_interval_s": 30, "heartbeat_timeout_s": 20}) == [
        ": Value error, heartbeat_timeout_s must be longer than heartbeat_interval_s"]
    assert problems({"pop_timeout_s": 0.1, "pop_lookup_wait_s": 0.2}) == [
        ": Value error, pop_lookup_wait_s must be shorter than pop_timeout_s"]
    assert problems({"disconnect": {"state": "logged_out", "reason": "break"}}) == [
        "disconnect: Value error, a reason goes with not_ready only, not with logged_out"]
    assert problems({"surprise": 1}) == ["surprise: Extra inputs are not permitted"]
    settings = WebSettings.model_validate({"users": [{"username": "a", "role": "admin", "password": hashed}],
                                           "disconnect": {"state": "logged_out"}})
    assert settings.users[0].display_name == "a" and settings.disconnect.reason == "no-answer"
    assert hashed not in repr(settings)


async def test_concurrent_sign_ins_do_not_stall_the_loop(tmp_path: Path) -> None:
    """Password checks run in threads: the loop answers other requests meanwhile."""
    async with harness(tmp_path) as h, client() as session:
        async def login() -> int:
            status, _ = await call(session, "POST", f"{h.url}/ui/login",
                                   json={"username": "1001", "password": "wrong"})
            return status

        async def health() -> float:
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with session.get(f"{h.url}/healthz") as response:
                assert response.status == 200
            return loop.time() - started

        logins = [asyncio.ensure_future(login()) for _ in range(4)]
        await asyncio.sleep(0.02)
        waited = await health()
        assert await asyncio.gather(*logins) == [401] * 4
        assert waited < 0.1


async def test_a_reload_that_changes_a_user_closes_their_sockets(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        grace = await h.cti("1002")
        ada = await h.cti("1001")
        users = [u.model_copy(update={"extension": "1003"}) if u.username == "1002" else u
                 for u in h.web_settings.users]
        settings = h.web_settings.model_copy(update={"users": users})
        h.desk.services.settings = lambda: settings
        assert await h.desk.reload() == []
        with pytest.raises(ConnectionError):
            while True:
                await grace.receive(timeout=3)
        assert grace.ws.close_code == CLOSE_SESSION
        again = await CtiClient.connect(grace.session, h.ws_url, origin=h.url)
        assert again.welcome["user"]["extension"] == "1003" and again.welcome["stream"] == "agent:1003"
        assert not ada.ws.closed
        await again.close()
        await ada.close()
        await grace.close()
