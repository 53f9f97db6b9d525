"""Per-edge sequence accounting on the receiving side: what is new, what is contiguous, what is missing.

The edge numbers every record; the receiver acks the highest contiguous seq it has stored. Seqs the edge
reported as dropped (a records_dropped event) count as accounted for, so one lost range cannot hold the
ack back forever.
"""

from __future__ import annotations


class SeqTracker:
    def __init__(self, acked_through: int = 0) -> None:
        self.acked_through = acked_through
        self._above: set[int] = set()
        """Seqs stored or accounted for beyond acked_through (their gaps are still open)."""

    def add(self, seqs: list[int]) -> list[int]:
        """Mark seqs stored; returns those not seen before, in the given order (re-deliveries drop out)."""
        new = [s for s in seqs if s > self.acked_through and s not in self._above]
        self._above.update(new)
        self._advance()
        return new

    def account(self, ranges: list[tuple[int, int]]) -> None:
        """The edge dropped these inclusive ranges; they will never arrive."""
        for first, last in ranges:
            self._above.update(range(max(first, self.acked_through + 1), last + 1))
        self._advance()

    def gaps(self) -> list[tuple[int, int]]:
        """Inclusive ranges missing below the highest seq seen."""
        missing, expected = [], self.acked_through + 1
        for seq in sorted(self._above):
            if seq > expected:
                missing.append((expected, seq - 1))
            expected = seq + 1
        return missing

    def _advance(self) -> None:
        while self.acked_through + 1 in self._above:
            self.acked_through += 1
            self._above.discard(self.acked_through)
