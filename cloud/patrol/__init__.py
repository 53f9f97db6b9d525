"""Patrol rounds that cannot be faked: signed checkpoint and badge codes, plans, live misses, stats."""
