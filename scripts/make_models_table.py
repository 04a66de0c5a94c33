"""Write src/deepres/analysis/models_table.json: the model table `deepres models` prints,
counted by building every registered model (on the meta device).

    .venv/bin/python scripts/make_models_table.py
"""

import json

from deepres.analysis.flops import model_table
from deepres.analysis.models_table import TABLE

if __name__ == "__main__":
    TABLE.write_text(json.dumps(model_table(), indent=1) + "\n")
    print(f"wrote {TABLE}")
