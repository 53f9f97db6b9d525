"""``python -m cloud.ingest``: the same as ``estatehub hub ingest``, for running a worker as a child process."""

import logging

from cloud.cli import ingest

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
ingest(prog_name="python -m cloud.ingest")
