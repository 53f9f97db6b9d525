"""TimeSeriesStore on InfluxDB 2.x: the same buckets computed by Flux, for sites that already run InfluxDB.

One measurement; the series key, quantity and quality are tags, the reading is the field ``value``.
Aggregates use quality "0" only, like the SQL store. Counter deltas come from ``difference()`` over the
whole range before windowing, so a delta lands in the window of its later sample; the step from the last
sample before the range is added here, from two one-row results.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from cloud.timeseries.bulk import SeriesKey
from cloud.timeseries.query import DEFAULT_TZ, Bucket, BucketSize, Latest, bucket_edges, empty_bucket
from cloud.timeseries.store import Reading
from protocols.quantities import PointKind

MEASUREMENT = "telemetry"
EVERY = {"15min": "15m", "hour": "1h", "day": "1d", "month": "1mo"}
KEY_TAGS = ("site", "edge", "device", "point")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InfluxStore:
    """Owns its client: close() when done."""

    def __init__(self, url: str, token: str, org: str, bucket: str) -> None:
        self._client = InfluxDBClient(url=url, token=token, org=org)
        self._org = org
        self._bucket = bucket

    def close(self) -> None:
        self._client.close()

    def write(self, points: Sequence[Reading]) -> None:
        if not points:
            return
        records = []
        for p in points:
            record = Point(MEASUREMENT).tag("quantity", p.quantity).tag("quality", str(p.quality))
            for tag, value in zip(KEY_TAGS, p.key, strict=True):
                record = record.tag(tag, value)
            records.append(record.field("value", float(p.value)).time(p.ts, WritePrecision.MS))
        with self._client.write_api(write_options=SYNCHRONOUS) as api:
            api.write(bucket=self._bucket, org=self._org, record=records, write_precision=WritePrecision.MS)

    def buckets(
        self, key: SeriesKey, kind: PointKind, start_ms: int, end_ms: int, bucket: BucketSize, tz: str = DEFAULT_TZ
    ) -> list[Bucket]:
        edges = bucket_edges(start_ms, end_ms, bucket, tz)
        counter = kind is PointKind.COUNTER
        series = f'{self._series_filter([key])} and r.quality == "0"'

        def windowed(source: str, fn: str, name: str) -> str:
            window = f'aggregateWindow(every: {EVERY[bucket]}, fn: {fn}, createEmpty: false, timeSrc: "_start")'
            return f'{source} |> {window} |> yield(name: "{name}")'

        lines = [
            'import "timezone"',
            f"option location = timezone.location(name: {_str(tz)})",
            f"data = from(bucket: {_str(self._bucket)})",
            f"    |> range(start: {_time(start_ms)}, stop: {_time(end_ms)})",
            f"    |> filter(fn: (r) => {series})",
        ]
        lines += [windowed("data", fn, fn) for fn in ("count", "min", "max", "sum")]
        if counter:
            lines += [
                "deltas = data |> difference()",
                windowed("deltas |> filter(fn: (r) => r._value > 0.0)", "sum", "increase"),
                windowed("deltas |> filter(fn: (r) => r._value < 0.0)", "count", "decreases"),
                'data |> first() |> yield(name: "first")',
                f"from(bucket: {_str(self._bucket)}) |> range(start: 1970-01-01T00:00:00Z, stop: {_time(start_ms)})"
                f' |> filter(fn: (r) => {series}) |> last() |> yield(name: "previous")',
            ]
        n = len(edges) - 1
        acc: dict[str, list[Any]] = {
            "count": [0] * n, "sum": [0.0] * n, "min": [None] * n, "max": [None] * n,
            "increase": [0.0] * n, "decreases": [0] * n,
        }  # fmt: skip
        ends: dict[str, tuple[int, float]] = {}
        for record in self._query("\n".join(lines)):
            result, value = record.values["result"], record.get_value()
            i = min(max(bisect_right(edges, _ms(record.get_time())) - 1, 0), n - 1)
            if result in ("first", "previous"):
                ends[result] = (i, value)
            elif result in ("min", "max"):
                current = acc[result][i]
                acc[result][i] = value if current is None else (min if result == "min" else max)(current, value)
            else:
                acc[result][i] += value
        if "first" in ends and "previous" in ends:
            i, first = ends["first"]
            step = first - ends["previous"][1]
            acc["increase" if step >= 0 else "decreases"][i] += step if step >= 0 else 1
        return [
            Bucket(edges[k], acc["count"][k], acc["min"][k], acc["sum"][k] / acc["count"][k], acc["max"][k],
                   acc["increase"][k] if counter else None, acc["decreases"][k])
            if acc["count"][k]
            else empty_bucket(edges[k], counter)
            for k in range(n)
        ]  # fmt: skip

    def latest(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, Latest]:
        wanted = list(keys)
        if not wanted:
            return {}
        flux = (
            f"from(bucket: {_str(self._bucket)}) |> range(start: 1970-01-01T00:00:00Z)"
            f" |> filter(fn: (r) => {self._series_filter(wanted)}) |> last()"
        )
        newest: dict[SeriesKey, Latest] = {}
        for record in self._query(flux):  # one row per series and quality tag: keep the newest
            key = (record["site"], record["edge"], record["device"], record["point"])
            ts = _ms(record.get_time())
            if key not in newest or ts > newest[key].ts:
                newest[key] = Latest(ts, record.get_value(), int(record["quality"]))
        return newest

    def _series_filter(self, keys: Sequence[SeriesKey]) -> str:
        each = [" and ".join(f"r.{tag} == {_str(v)}" for tag, v in zip(KEY_TAGS, key, strict=True)) for key in keys]
        return f'r._measurement == "{MEASUREMENT}" and r._field == "value" and (({") or (".join(each)}))'

    def _query(self, flux: str) -> Iterable[Any]:
        for table in self._client.query_api().query(flux, org=self._org):
            yield from table.records


def _str(value: str) -> str:
    """A Flux string literal (escapes quotes, backslashes and ${ interpolation)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def _time(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
