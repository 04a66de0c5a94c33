import os
import tempfile

import pytest
import torch

# Tests never touch the user's cache.
os.environ["DEEPRES_CACHE"] = tempfile.mkdtemp(prefix="deepres-test-cache-")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_data(tmp_path):
    from helpers import make_tiny_folder

    return make_tiny_folder(tmp_path / "tiny")
