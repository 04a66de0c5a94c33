import pytest

from helpers import make_tiny_folder, make_weights


@pytest.fixture
def weights_file(tmp_path):
    return make_weights(tmp_path / "w.safetensors")


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_folder(tmp_path / "tiny")
