"""The documentation site builds with --strict (no broken link or reference), and its
command-line page is generated from the parser: every command and flag is on it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_with_every_flag_on_the_cli_page(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import importlib.util

    spec = importlib.util.spec_from_file_location("deepres_docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.cli_page()
    for flag in ("--model", "--in-chans", "--shuffle-buffer", "--max-connections", "--engine",
                 "--report-only", "--tracking-uri"):
        assert flag in page, flag
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    from deepres.data.config import DATA_FORMATS

    data = (tmp_path / "site" / "data" / "index.html").read_text()
    assert all(name in data for name in DATA_FORMATS) and "--shuffle-buffer" in data


def test_the_readme_is_a_quickstart_that_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    for page in pages:
        assert f"(docs/{page})" in readme, page
