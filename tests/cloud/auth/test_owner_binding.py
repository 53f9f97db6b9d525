"""Owner binding by SMS code: wrong, expired, reused codes, attempts and resends limited.

mock: no SMS gateway here. Texts go to a captured sender (tests/cloud/api/hub_app.py CapturedSms), from
which the tests read the code an owner would have received.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from cloud.api.deps import API_PREFIX
from cloud.audit.models import AuditEntry
from cloud.auth import binding
from cloud.auth.binding import BindingError
from cloud.auth.models import Role, User, VerificationCode
from cloud.registry.models import Unit
from tests.cloud.api.hub_app import SETTINGS, T0, CapturedSms, Hub

START = f"{API_PREFIX}/owner-binding/start"
VERIFY = f"{API_PREFIX}/owner-binding/verify"
PHONE = "13800010002"  # demo unit 1-0102, no account yet


def start(hub: Hub, phone: str = PHONE) -> tuple[int, dict[str, object]]:
    r = hub.client.post(START, json={"phone": phone})
    return r.status_code, r.json()


def verify(hub: Hub, code: str, phone: str = PHONE, password: str = "my own password") -> tuple[int, dict[str, str]]:
    r = hub.client.post(VERIFY, json={"phone": phone, "code": code, "password": password})
    return r.status_code, r.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_an_owner_binds_every_unit_registered_with_their_number(hub: Hub) -> None:
    """mock: no SMS gateway here."""
    with hub.session() as session, session.begin():  # the property registered the same number on a second unit
        session.execute(update(Unit).where(Unit.code == "2-0304").values(owner_phone=PHONE))
    assert start(hub, "+86 138-0001-0002") == (202, {
        "detail": "if this number is registered for a unit, a code was sent to it", "expires_in": 300})  # fmt: skip
    ((phone, text),) = hub.sms.sent
    assert phone == PHONE and "验证码" in text
    status, token = verify(hub, hub.sms.last_code(PHONE))
    assert status == 200
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    me = hub.client.get(f"{API_PREFIX}/auth/me", headers=headers).json()
    assert (me["username"], me["role"], me["full_name"]) == (PHONE, "owner", "周娟")
    units = hub.client.get(f"{API_PREFIX}/units", headers=headers).json()
    assert [u["code"] for u in units] == ["1-0102", "2-0304"]
    with hub.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "user")).one()
        assert entry.after is not None
        assert (entry.action, entry.actor, entry.after["units"]) == ("create", f"owner-binding:{PHONE}",
                                                                      ["1-0102", "2-0304"])  # fmt: skip
        assert "password_hash" not in entry.after


def test_an_unregistered_number_gets_the_same_answer_and_no_text(hub: Hub) -> None:
    """mock: no SMS gateway here."""
    assert start(hub, "13700000000") == start(hub, PHONE)
    assert [p for p, _ in hub.sms.sent] == [PHONE]
    assert verify(hub, "123456", "13700000000")[0] == 400


def test_a_wrong_code_is_counted_and_the_attempts_run_out(hub: Hub) -> None:
    """mock: no SMS gateway here. Each wrong try is committed although the request fails."""
    start(hub)
    code = hub.sms.last_code(PHONE)
    answers = [verify(hub, wrong(code)) for _ in range(binding.MAX_ATTEMPTS)]
    assert answers == [(400, {"detail": f"wrong code ({n} tries left)"}) for n in (4, 3, 2, 1)] + [
        (400, {"detail": "wrong code; ask for a new one"})
    ]
    assert verify(hub, code) == (429, {"detail": "too many wrong codes; ask for a new one"})
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.role == Role.OWNER)) == 2


def test_a_code_is_single_use(hub: Hub) -> None:
    """mock: no SMS gateway here."""
    start(hub)
    code = hub.sms.last_code(PHONE)
    assert verify(hub, code)[0] == 200
    assert verify(hub, code, password="someone else's pw") == (
        400, {"detail": "this code was already used; ask for a new one"})  # fmt: skip


def test_a_code_expires_and_a_new_one_replaces_the_old(hub: Hub) -> None:
    """mock: no SMS gateway here. Service level, with the clock passed in."""
    sms = CapturedSms()
    with hub.session() as session, session.begin():
        binding.start(session, SETTINGS, sms, PHONE, T0)
    code = sms.last_code(PHONE)
    with hub.session() as session, session.begin(), pytest.raises(BindingError, match="the code has expired"):
        binding.verify(session, SETTINGS, PHONE, code, "my own password", T0 + binding.CODE_TTL)
    with hub.session() as session, session.begin():
        binding.start(session, SETTINGS, sms, PHONE, T0 + timedelta(minutes=1))
        newer = sms.last_code(PHONE)
        assert session.scalar(select(func.count()).select_from(VerificationCode)) == 2
    with hub.session() as session, session.begin():
        user = binding.verify(session, SETTINGS, PHONE, newer, "my own password", T0 + timedelta(minutes=2))
        assert user.role is Role.OWNER


def test_codes_are_rate_limited_per_number(hub: Hub) -> None:
    """mock: no SMS gateway here."""
    assert start(hub)[0] == 202
    status, body = start(hub)
    assert status == 429 and str(body["detail"]).startswith("a code was just sent; ask again in")
    sms = CapturedSms()
    with hub.session() as session, session.begin():
        for minute in range(1, binding.MAX_CODES_PER_DAY + 1):
            binding.start(session, SETTINGS, sms, "13800010003", T0 + timedelta(minutes=minute))
        with pytest.raises(BindingError, match="at most 5 codes a day for one number") as caught:
            binding.start(session, SETTINGS, sms, "13800010003", T0 + timedelta(minutes=10))
        assert caught.value.status == 429
        binding.start(session, SETTINGS, sms, "13800010003", T0 + timedelta(days=1, minutes=5))
    assert len(sms.sent) == binding.MAX_CODES_PER_DAY + 1  # the next day's


def test_a_new_owner_number_on_the_unit_takes_it_from_the_previous_owner(hub: Hub) -> None:
    unit = hub.ids["unit_a"]
    assert hub.get("owner_a", f"{API_PREFIX}/units/{unit}").status_code == 200
    r = hub.client.patch(f"{API_PREFIX}/units/{unit}", headers=hub.headers("finance_x"),
                         json={"owner_name": "新业主", "owner_phone": "13600000000"})  # fmt: skip
    assert r.status_code == 200 and r.json()["owner_phone"] == "13600000000"
    assert hub.get("owner_a", f"{API_PREFIX}/units/{unit}").status_code == 404
    assert hub.get("owner_a", f"{API_PREFIX}/units").json() == []


def test_a_staff_account_named_like_the_number_cannot_be_taken_over(hub: Hub) -> None:
    """mock: no SMS gateway here."""
    r = hub.client.post(f"{API_PREFIX}/users", headers=hub.headers("admin"),
                        json={"username": PHONE, "role": "guard", "password": "guard password", "sites": ["demo-site"]})  # fmt: skip
    assert r.status_code == 201
    start(hub)
    assert verify(hub, hub.sms.last_code(PHONE))[0] == 403
