"""A hand-made site with issued bills (see bill_factory.py), and the API on it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.cloud.billing.ledger.bill_factory import Books, api, books, books_engine

__all__ = ["api", "books_engine"]


@pytest.fixture
def site(books_engine: Engine) -> Books:
    return books(books_engine)
