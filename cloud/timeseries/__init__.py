"""Time series: raw samples keyed so re-delivery is harmless, bucketed range queries and rollups."""
