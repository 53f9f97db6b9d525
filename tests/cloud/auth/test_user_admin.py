"""User administration by admins with every site, and its audit trail."""

from __future__ import annotations

from sqlalchemy import select

from cloud.api.deps import API_PREFIX
from cloud.audit.models import AuditEntry
from tests.cloud.api.hub_app import Hub

USERS = f"{API_PREFIX}/users"


def test_an_admin_creates_and_changes_staff_and_each_change_is_audited(hub: Hub) -> None:
    admin = hub.headers("admin")
    r = hub.client.post(USERS, headers=admin, json={"username": "tech1", "full_name": "李工", "role": "technician",
                                                    "password": "tech password", "sites": ["demo-site"]})  # fmt: skip
    assert r.status_code == 201
    created = r.json()
    assert (created["role"], created["sites"], created["all_sites"]) == ("technician", ["demo-site"], False)
    r = hub.client.patch(f"{USERS}/{created['id']}", headers=admin,
                         json={"sites": ["demo-site", "other-site"], "is_active": False})  # fmt: skip
    assert r.json()["sites"] == ["demo-site", "other-site"] and r.json()["is_active"] is False
    listed = hub.client.get(USERS, headers=admin, params={"role": "technician"}).json()
    assert [u["username"] for u in listed] == ["tech1"]

    with hub.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity == "user").order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor, e.actor_id, e.label) for e in entries] == [
        ("create", "admin", hub.users["admin"].id, "tech1"),
        ("update", "admin", hub.users["admin"].id, "tech1"),
    ]
    before, after = entries[1].before, entries[1].after
    assert before is not None and after is not None
    assert {k: (before[k], after[k]) for k in after if before[k] != after[k]} == {
        "sites": (["demo-site"], ["demo-site", "other-site"]),
        "is_active": (True, False),
    }
    assert not any("hash" in key or "password" == key for key in after)


def test_accounts_are_checked_before_they_exist(hub: Hub) -> None:
    admin = hub.headers("admin")
    base = {"username": "someone", "password": "long enough", "sites": ["demo-site"]}
    cases = [
        ({**base, "role": "guard", "sites": []}, 422, "a guard needs at least one site (or, for an admin, all_sites)"),
        ({**base, "role": "finance", "all_sites": True}, 422, "only admins may have all sites"),
        ({**base, "role": "owner"}, 422, None),
        ({**base, "role": "guard", "sites": ["nowhere"]}, 422, "no site nowhere"),
        ({**base, "role": "guard", "username": "engineer_x"}, 409, "username engineer_x is taken"),
        ({**base, "role": "guard", "password": "short"}, 422, None),
    ]
    for body, status, detail in cases:
        r = hub.client.post(USERS, headers=admin, json=body)
        assert r.status_code == status, body
        if detail is not None:
            text = r.json()["detail"]
            assert detail in (text if isinstance(text, str) else " ".join(e["msg"] for e in text)), r.json()
    r = hub.client.patch(f"{USERS}/{hub.users['owner_a'].id}", headers=admin, json={"role": "guard"})
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "an owner account cannot become staff; create a staff account instead",
    )
    assert hub.client.get(f"{USERS}/999999", headers=admin).status_code == 404
