"""Creating the hub's schema: every domain's models, brought to the current migration."""

from __future__ import annotations

from sqlalchemy import Engine

from cloud.audit import models as _audit  # noqa: F401  (registers its tables)
from cloud.auth import models as _auth  # noqa: F401  (registers its tables)
from cloud.db import Base
from cloud.ingest import models as _ingest  # noqa: F401  (registers its tables)
from cloud.registry import models as _registry  # noqa: F401  (registers its tables)
from cloud.timeseries import models as _timeseries  # noqa: F401  (registers its tables)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)
