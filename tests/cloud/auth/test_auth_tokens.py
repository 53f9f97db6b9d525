"""Sign-in and tokens: bad passwords, expired and tampered tokens, wrong roles, the console's cookie."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
from fastapi import Response
from sqlalchemy import update

from cloud.api.deps import API_PREFIX, CookieUser, SettingsDep, clear_session_cookie, set_session_cookie
from cloud.auth.models import User
from cloud.auth.security import create_token
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, T0, Hub

LOGIN = f"{API_PREFIX}/auth/login"
ME = f"{API_PREFIX}/auth/me"


def login(hub: Hub, username: str, password: str) -> tuple[int, dict[str, str]]:
    r = hub.client.post(LOGIN, data={"username": username, "password": password})
    return r.status_code, r.json()


def test_sign_in_gives_a_token_for_the_api(hub: Hub) -> None:
    status, body = login(hub, "engineer_x", PASSWORD)
    assert status == 200 and body["token_type"] == "bearer" and body["expires_in"] == 3600
    me = hub.client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert (me["username"], me["role"], me["sites"], me["unit_ids"]) == ("engineer_x", "engineer", ["demo-site"], [])


def test_a_wrong_password_an_unknown_user_and_a_disabled_account_look_alike(hub: Hub) -> None:
    with hub.session() as session, session.begin():
        session.execute(update(User).where(User.username == "guard_x").values(is_active=False))
    for username, password in (("engineer_x", "wrong password"), ("nobody", PASSWORD), ("guard_x", PASSWORD)):
        assert login(hub, username, password) == (401, {"detail": "wrong username or password"})


def test_no_token_an_expired_one_or_a_tampered_one_is_refused(hub: Hub) -> None:
    user = hub.users["engineer_x"]
    url = f"{API_PREFIX}/sites"
    assert hub.client.get(url).status_code == 401

    expired = create_token(SETTINGS, user.id, user.password_changed_at, now=T0 - timedelta(days=1))
    r = hub.client.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.json(), r.headers["www-authenticate"]) == (401, {"detail": "token expired"}, "Bearer")

    header, payload, signature = hub.token("engineer_x").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(hub.users["admin"].id)  # promote oneself, keep the signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    foreign = jwt.encode(claims, "somebody else's secret key, long enough", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (f"{header}.{forged}.{signature}", foreign, unsigned, "not-a-token"):
        r = hub.client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["detail"].startswith("invalid token"), token


def test_a_password_change_ends_every_session(hub: Hub) -> None:
    old = hub.headers("finance_x")
    assert hub.client.get(ME, headers=old).status_code == 200
    r = hub.client.patch(f"{API_PREFIX}/users/{hub.users['finance_x'].id}", headers=hub.headers("admin"),
                         json={"password": "a brand new password"})  # fmt: skip
    assert r.status_code == 200
    assert hub.client.get(ME, headers=old).json() == {
        "detail": "invalid token: the account is disabled or its password changed"
    }
    assert login(hub, "finance_x", PASSWORD)[0] == 401
    assert login(hub, "finance_x", "a brand new password")[0] == 200


def test_a_role_without_the_right_gets_403(hub: Hub) -> None:
    x, meter = hub.ids["site_x"], hub.ids["meter_a"]
    new_meter = {"code": "EM-NEW", "kind": "electricity", "role": "master"}
    cases = [
        ("guard_x", "POST", f"/sites/{x}/meters", new_meter, "this needs one of the roles: admin, engineer"),
        ("finance_x", "PATCH", f"/meters/{meter}", {"role": "master"}, "this needs one of the roles: admin, engineer"),
        ("engineer_x", "PATCH", f"/units/{hub.ids['unit_a']}", {"household_size": 2},
         "this needs one of the roles: admin, finance"),
        ("owner_a", "GET", "/edges", None, "this needs one of the roles: admin, engineer, technician"),
        ("finance_x", "GET", "/dead-letters", None, "this needs one of the roles: admin, engineer, technician"),
        ("admin_x", "GET", "/users", None, "this needs an admin with every site"),
        ("admin_x", "GET", "/audit", None, "this needs an admin with every site"),
        ("admin_x", "POST", "/sites", {"code": "s9", "name": "九"}, "this needs an admin with every site"),
    ]  # fmt: skip
    for user, method, path, body, detail in cases:
        r = hub.client.request(method, API_PREFIX + path, json=body, headers=hub.headers(user))
        assert (r.status_code, r.json()) == (403, {"detail": detail}), (user, method, path)
    r = hub.client.post(f"{API_PREFIX}/sites/{x}/meters", json=new_meter, headers=hub.headers("engineer_x"))
    assert r.status_code == 201


def test_the_console_signs_in_with_a_cookie(hub: Hub) -> None:
    """The console's pages use current_user_from_cookie; the cookie holds the same token as the API."""

    @hub.app.get("/console-probe")
    def page(user: CookieUser) -> dict[str, str]:
        return {"hello": user.username}

    @hub.app.post("/console-probe/login")
    def sign_in(response: Response, settings: SettingsDep) -> dict[str, str]:
        set_session_cookie(response, hub.token("guard_x"), settings)
        return {}

    assert hub.client.get("/console-probe").status_code == 401
    r = hub.client.post("/console-probe/login")
    cookie = r.headers["set-cookie"]
    assert "eh_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert hub.client.get("/console-probe").json() == {"hello": "guard_x"}

    @hub.app.post("/console-probe/logout")
    def sign_out(response: Response) -> dict[str, str]:
        clear_session_cookie(response)
        return {}

    hub.client.post("/console-probe/logout")
    assert hub.client.get("/console-probe").status_code == 401
    hub.client.cookies.set("eh_session", hub.token("guard_x")[:-3] + "abc")
    assert hub.client.get("/console-probe").status_code == 401
