import pytest

from helpers import make_tiny_folder


@pytest.fixture
def tiny_data(tmp_path):
    return make_tiny_folder(tmp_path / "tiny")
