"""`deepres models` reads a committed table; the table must be what counting gives."""

import json
import subprocess
import sys

from deepres.analysis.models_table import listed_models


def test_the_committed_table_is_what_building_every_model_counts():
    from deepres.analysis.flops import model_table

    # Regenerate with `scripts/make_models_table.py` after changing a model.
    assert listed_models() == json.loads(json.dumps(model_table()))


def test_deepres_models_answers_without_building_a_model_or_importing_torch():
    code = ("import contextlib, io, sys\n"
            "from deepres.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['models', '--json']) == 0\n"
            "rows = __import__('json').loads(out.getvalue())\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "r20 = next(r for r in rows if r['name'] == 'resnet20')\n"
            "assert 'deepres:resnet20.cifar10-medium' in [p['source'] for p in r20['published']]\n"
            "assert len(rows) > 40\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['models', 'resnet5*', '*wide*', '--json']) == 0\n"
            "assert 'torch' not in sys.modules, 'a pattern imported torch'\n"
            "from deepres.models.names import list_models\n"
            "assert [r['name'] for r in __import__('json').loads(out.getvalue())] == "
            "list_models(['resnet5*', '*wide*'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
