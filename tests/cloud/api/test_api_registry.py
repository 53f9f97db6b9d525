"""Registry writes over the API (same rules and audit as import files), file upload, and the audit log."""

from __future__ import annotations

import yaml

from cloud.api.deps import API_PREFIX
from tests.cloud.api.hub_app import Hub


def test_creates_and_updates_follow_the_import_rules_and_are_audited(hub: Hub) -> None:
    x = hub.ids["site_x"]
    engineer = hub.headers("engineer_x")
    r = hub.client.post(f"{API_PREFIX}/sites/{x}/meters", headers=engineer,
                        json={"code": "EM-LIFT", "kind": "electricity", "role": "common", "parent": "EM-B1-MAIN",
                              "serves": ["1-0101", "1-0102"]})  # fmt: skip
    assert r.status_code == 201
    lift = r.json()
    assert (lift["role"], len(lift["serves"]), lift["parent_id"] is not None) == ("common", 2, True)

    r = hub.client.post(f"{API_PREFIX}/sites/{x}/meters", headers=engineer,
                        json={"code": "EM-LIFT", "kind": "electricity", "role": "master"})  # fmt: skip
    assert (r.status_code, r.json()) == (409, {"detail": "meter EM-LIFT exists in site demo-site"})

    r = hub.client.post(f"{API_PREFIX}/sites/{x}/meters", headers=engineer,
                        json={"code": "WM-BAD", "kind": "water", "role": "sub", "parent": "EM-B1-MAIN"})  # fmt: skip
    assert (r.status_code, r.json()) == (422, {"detail": [
        "meter WM-BAD: unit: a sub meter belongs to a unit: give its unit code",
        "meter WM-BAD: parent: parent EM-B1-MAIN is an electricity meter; the parent of a water meter must be a water meter",
    ]})  # fmt: skip

    r = hub.client.patch(f"{API_PREFIX}/meters/{lift['id']}", headers=engineer, json={"serves": ["1-0103"]})
    assert r.status_code == 200 and len(r.json()["serves"]) == 1
    r = hub.client.patch(f"{API_PREFIX}/units/{hub.ids['unit_a']}", headers=hub.headers("finance_x"),
                         json={"owner_phone": "not a phone"})  # fmt: skip
    assert r.status_code == 422

    audit = hub.client.get(f"{API_PREFIX}/audit", headers=hub.headers("admin"), params={"entity": "meter"}).json()
    assert [(a["action"], a["actor"], a["label"]) for a in audit[:2]] == [
        ("update", "engineer_x", "demo-site/EM-LIFT"),
        ("create", "engineer_x", "demo-site/EM-LIFT"),
    ]
    assert (audit[0]["before"]["serves"], audit[0]["after"]["serves"]) == (["1-0101", "1-0102"], ["1-0103"])
    assert audit[0]["site_id"] == x
    page = hub.client.get(f"{API_PREFIX}/audit", headers=hub.headers("admin"),
                          params={"entity": "meter", "before_id": audit[0]["id"], "limit": 1}).json()  # fmt: skip
    assert [a["id"] for a in page] == [audit[1]["id"]]


def test_an_admin_uploads_a_registry_file_with_a_dry_run_first(hub: Hub) -> None:
    doc = {"sites": [{"code": "demo-site", "name": "演示小区", "equipment": [{"code": "LIFT-1", "name": "1号电梯",
                                                                          "type": "lift"}]}]}  # fmt: skip
    upload = {"file": ("more.yaml", yaml.safe_dump(doc, allow_unicode=True))}
    url = f"{API_PREFIX}/registry/import"
    r = hub.client.post(url, headers=hub.headers("admin_x"), files=upload, data={"dry_run": "true"})
    assert r.status_code == 200 and r.json()["dry_run"] is True and r.json()["counts"]["equipment"]["created"] == 1
    equipment = hub.client.get(f"{API_PREFIX}/equipment", headers=hub.headers("admin_x")).json()
    assert "LIFT-1" not in [e["code"] for e in equipment]

    r = hub.client.post(url, headers=hub.headers("admin_x"), files=upload)
    assert r.status_code == 200 and r.json()["audit_entries"] == 1
    equipment = hub.client.get(f"{API_PREFIX}/equipment", headers=hub.headers("admin_x")).json()
    assert "LIFT-1" in [e["code"] for e in equipment]

    bad = "site,site_name,building,building_name,unit,floor,floor_area_m2,owner_name,owner_phone,household_size\n"
    bad += "demo-site,演示小区,B1,1号楼,1-0101,1,89.5,吴军,12,3\n"
    r = hub.client.post(url, headers=hub.headers("admin"), files={"file": ("roster.csv", bad)})
    assert (r.status_code, r.json()) == (422, {"detail": [
        "line 2 (unit 1-0101): owner_phone: '12' is not a mainland mobile number (11 digits starting with 1)"]})  # fmt: skip
