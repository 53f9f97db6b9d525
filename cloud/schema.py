"""Creating the hub's schema: every domain's models, brought to the current migration."""

from __future__ import annotations

from sqlalchemy import Engine

from cloud.db import Base
from cloud.timeseries import models as _timeseries  # noqa: F401  (registers its tables)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)
