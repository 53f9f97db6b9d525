"""Sets of per-edge seqs as sorted, merged, inclusive ``[first, last]`` ranges.

The edge reports what it dropped this way, the hub keeps what it stored this way, and the ack is the end of
the run from seq 1 (``contiguous_through``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

Ranges = list[list[int]]


def merge(ranges: Iterable[Sequence[int]]) -> Ranges:
    """Sorted, non-overlapping, non-adjacent ranges covering the same seqs."""
    merged: Ranges = []
    for first, last in sorted((int(a), int(b)) for a, b in ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


def runs(seqs: Iterable[int]) -> Ranges:
    """The given seqs as merged ranges (linear for the usual, already sorted, batch)."""
    merged: Ranges = []
    for seq in sorted(seqs):
        if merged and seq <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], seq)
        else:
            merged.append([seq, seq])
    return merged


def contains(ranges: Ranges, seq: int) -> bool:
    """Whether ``seq`` lies in the merged ``ranges``."""
    i = bisect_right(ranges, seq, key=lambda r: r[0]) - 1
    return i >= 0 and ranges[i][1] >= seq


def overlaps(ranges: Ranges, first: int, last: int) -> bool:
    """Whether any seq of ``first..last`` lies in the merged ``ranges``."""
    i = bisect_right(ranges, last, key=lambda r: r[0]) - 1
    return i >= 0 and ranges[i][1] >= first


def contiguous_through(ranges: Ranges) -> int:
    """End of the run that starts at seq 1 (0 if seq 1 is not covered)."""
    return ranges[0][1] if ranges and ranges[0][0] <= 1 else 0


def gaps(ranges: Ranges) -> Ranges:
    """Ranges missing from 1 up to the highest seq covered."""
    missing, expected = [], 1
    for first, last in ranges:
        if first > expected:
            missing.append([expected, first - 1])
        expected = last + 1
    return missing
