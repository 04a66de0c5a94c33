import os
import tempfile

import pytest
import torch

# Tests never touch the user's cache.
os.environ["DEEPRES_CACHE"] = tempfile.mkdtemp(prefix="deepres-test-cache-")

# Under pytest-xdist (`make test` runs one worker per core) each worker computes on one thread,
# and so do the commands it starts: two workers with two OpenMP threads each on two cores
# would spin against each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_data(tmp_path):
    from helpers import make_tiny_folder

    return make_tiny_folder(tmp_path / "tiny")
