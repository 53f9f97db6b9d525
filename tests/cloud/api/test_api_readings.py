"""Readings and edge health through the API: buckets, consumption, equipment telemetry, edges, dead letters."""

from __future__ import annotations

from cloud.api.deps import API_PREFIX
from tests.cloud.api.hub_app import Hub

DAY = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-03T00:00:00+08:00"}


def test_meter_buckets_follow_the_local_calendar(hub: Hub) -> None:
    r = hub.get("owner_a", f"{API_PREFIX}/meters/{hub.ids['meter_a']}/buckets", params={**DAY, "bucket": "day"})
    body = r.json()
    assert (body["point"], body["quantity"], body["tz"]) == ("energy_import", "energy_import_kwh", "Asia/Shanghai")
    assert [(b["start"], b["count"], b["consumption"]) for b in body["buckets"]] == [
        ("2026-02-28T16:00:00Z", 16, 22.5),  # samples from 08:00 local, hourly, +1.5 kWh each
        ("2026-03-01T16:00:00Z", 24, 36.0),
    ]
    voltage = hub.get(
        "owner_a", f"{API_PREFIX}/meters/{hub.ids['meter_a']}/buckets", params={**DAY, "point": "voltage"}
    )
    assert voltage.status_code == 200 and all(b["count"] == 0 for b in voltage.json()["buckets"])  # mapped, no data
    assert hub.get("owner_a", f"{API_PREFIX}/meters/{hub.ids['meter_a']}/buckets",
                   params={**DAY, "point": "nonsense"}).status_code == 404  # fmt: skip


def test_bad_ranges_are_refused_with_a_reason(hub: Hub) -> None:
    url = f"{API_PREFIX}/meters/{hub.ids['meter_a']}/buckets"
    cases = [
        ({"start": DAY["end"], "end": DAY["start"]}, "end must be after start"),
        ({**DAY, "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"start": "2026-01-01T00:00:00+08:00", "end": "2026-03-01T00:00:00+08:00", "bucket": "15min"},
         "15min buckets span at most 31 days"),
        ({"start": "2026-03-01T00:00:00", "end": DAY["end"]}, "timezone"),
    ]  # fmt: skip
    for params, reason in cases:
        r = hub.get("owner_a", url, params=params)
        assert r.status_code == 422 and reason in r.text, (params, r.text)


def test_series_and_equipment_readings_for_staff(hub: Hub) -> None:
    r = hub.get("engineer_x", f"{API_PREFIX}/series/{hub.ids['series_b']}/buckets", params={**DAY, "bucket": "day"})
    assert r.status_code == 200 and sum(b["consumption"] for b in r.json()["buckets"]) == 58.5
    pump = hub.ids["equipment_x"]
    latest = {p["point"]: p for p in hub.get("engineer_x", f"{API_PREFIX}/equipment/{pump}/latest").json()}
    assert latest["outlet_pressure"]["value"] == 175.0 and latest["running"]["value"] is None  # mapped, never sent
    r = hub.get("engineer_x", f"{API_PREFIX}/equipment/{pump}/buckets",
                params={**DAY, "bucket": "day", "point": "outlet_pressure"})  # fmt: skip
    assert [(b["count"], b["max"]) for b in r.json()["buckets"]] == [(16, 125.5), (24, 161.5)]


def test_edges_show_liveness_backlog_and_gaps_and_dead_letters_their_reason(hub: Hub) -> None:
    edges = hub.get("engineer_x", f"{API_PREFIX}/edges").json()
    assert [(e["code"], e["online"], e["backlog"], e["acked_through"], e["gaps"], e["missing"]) for e in edges] == [
        ("demo-edge", True, 12, 100, [[101, 119]], 19)
    ]
    detail = hub.get("engineer_x", f"{API_PREFIX}/edges/{hub.ids['edge_x']}").json()
    assert detail["links"] == {"b1-master": {"ok": True}}
    devices = hub.get("engineer_x", f"{API_PREFIX}/edges/{hub.ids['edge_x']}/devices").json()
    assert len(devices) == 101 and {p["point"] for p in devices[0]["points"]}
    letters = hub.get("engineer_x", f"{API_PREFIX}/dead-letters").json()
    assert [(d["reason"], d["preview"]) for d in letters] == [("bad json", "{")]
    one = hub.get("engineer_x", f"{API_PREFIX}/dead-letters/{letters[0]['id']}").json()
    assert one["payload_base64"] == "ew=="
    everyone = hub.get("admin", f"{API_PREFIX}/dead-letters", params={"site_id": hub.ids["site_y"]}).json()
    assert [d["site"] for d in everyone] == ["other-site"]
