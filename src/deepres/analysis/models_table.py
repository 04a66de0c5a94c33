"""The table `deepres models` prints, read from ``models_table.json`` (written by
``scripts/make_models_table.py`` from :func:`deepres.analysis.flops.model_table`, and checked
against it by ``tests/analysis/test_models_table.py``): listing the models then builds none of
them and imports no torch, so it answers at once (counting them took 19 s and 828 MB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("models_table.json")


def listed_models() -> list[dict[str, Any]]:
    """Every registered model with its family, parameters and multiply-adds at its default
    input, default input specification and bottleneck stride placement."""
    return json.loads(TABLE.read_text())
