"""One Prefect test harness for the whole session (its API server takes ~20 s to start here).

Prefect's home and result storage go to temporary folders *before* Prefect is imported, so tests
never touch ~/.prefect nor read each other's cached results.
"""

from __future__ import annotations

import os
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="tooltune-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = os.path.join(_HOME, "storage")
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ.pop("TOOLTUNE_GPU_DEPLOYMENT", None)
os.environ.pop("TOOLTUNE_PROFILE", None)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """Temporary Prefect API + database for every test under tests/flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
