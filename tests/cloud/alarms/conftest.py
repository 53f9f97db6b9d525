"""The seeded hub and its API client (see tests/cloud/api/hub_app.py)."""

from tests.cloud.api.hub_app import hub

__all__ = ["hub"]
