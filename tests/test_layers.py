"""The package's import structure: no import cycles (lazy imports inside functions count), and
bottom modules that stay light."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every deepres module ``name`` imports, at the top or inside a function."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in SRC.rglob("*.py")}
    return {name: _imports(path, name, set(paths)) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_input_specification_imports_nothing_of_deepres():
    graph = import_graph()
    assert graph["deepres.inputspec"] == set()
    # models, data, evaluate and export meet at it without importing each other's layers
    assert not any(m.startswith(("deepres.data", "deepres.evaluate", "deepres.export"))
                   for m in graph["deepres.models.names"] | graph["deepres.models.weights"])


def test_bottom_modules_do_not_import_matplotlib():
    code = ("import sys, deepres.inputspec, deepres.models, deepres.data; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _folder(module: str, packages: set[str]) -> str:
    """The folder (sub-package) a module lives in; a top-level module is its own."""
    parts = module.split(".")
    return ".".join(parts[:2]) if ".".join(parts[:2]) in packages else module


def folder_graph() -> dict[str, set[str]]:
    graph = import_graph()
    packages = {m for m in graph if (SRC / Path(*m.split("."))).is_dir()}
    folders: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = _folder(module, packages)
        folders.setdefault(here, set()).update(
            t for t in (_folder(x, packages) for x in targets) if t != here)
    return folders


def test_no_folder_imports_a_folder_that_imports_it_back():
    # File cycles are not enough: evaluate/ and export/ once imported each other through
    # different files. A loaded model (deepres/loaded) sits below both.
    assert cycles(folder_graph()) == []


def test_evaluate_export_and_serve_meet_at_the_loaded_model_only():
    graph = folder_graph()
    users = ("deepres.evaluate", "deepres.export", "deepres.serve")
    for folder in users:
        assert "deepres.loaded" in graph[folder]
        assert not set(users) & graph[folder], (folder, graph[folder])
    assert not set(users) & graph["deepres.loaded"]


def test_only_the_run_folder_spells_the_run_files():
    """A run folder's file names live in runtime/runfolder.py only (issue 41): every other
    module asks RunFolder for the path."""
    import re

    names = re.compile(r"""["'](metrics\.jsonl|summary\.json|checkpoint\.pt|config\.json|"""
                       r"""diverged\.json|mlflow\.json|best\.safetensors|ema\.safetensors)["']""")
    owner = SRC / "deepres" / "runtime" / "runfolder.py"
    hub = SRC / "deepres" / "models" / "hub.py"  # a Hub snapshot's config.json: another file
    found = [f"{p.relative_to(SRC)}:{n}" for p in sorted(SRC.rglob("*.py")) if p not in (owner, hub)
             for n, line in enumerate(p.read_text().splitlines(), 1) if names.search(line)]
    assert not found, found


def test_held_and_streamed_data_branch_only_inside_data():
    """One dataset path (issue 41 item 5): no module outside data/ asks whether data is held
    in memory (ArrayDataset) or streamed (FolderIndex)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "deepres"
    pattern = re.compile(r"isinstance\([^)]*(ArrayDataset|FolderIndex)|"
                         r"ArrayDataset \| FolderIndex|FolderIndex \| ArrayDataset")
    found = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
             if "data" not in p.relative_to(root).parts[:1]
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == [], found


def test_training_flows_one_way():
    """Issue 41 item 4: config -> setup (state) -> loop -> guard -> records, never back up; the
    guard and the records know nothing of the loop or of how a run is set up."""
    graph = import_graph()
    train = {m for m in graph if m.startswith("deepres.train.")}
    above = {"deepres.train.loop", "deepres.train.state", "deepres.train.evaluation"}
    for low in ("guard", "records", "checkpoint", "config", "policy", "errors", "schedule"):
        reached = graph[f"deepres.train.{low}"] & train
        assert not reached & above, (low, reached & above)
    assert "deepres.train.loop" not in set().union(*(graph[m] for m in train))


def test_each_data_concept_has_one_file_named_for_it():
    """Issue 41 item 5: data/'s files are the ones its package docstring maps to concepts (a
    new file is placed there, by its concept); the near-synonyms are gone."""
    import re

    folder = SRC / "deepres" / "data"
    files = {p.name for p in folder.glob("*.py")} - {"__init__.py"}
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
    listed = set(re.findall(r"``(\w+\.py)``", doc))
    assert files == listed, (sorted(files - listed), sorted(listed - files))
    gone = {"sources.py", "loaders.py", "transforms.py", "policies.py", "usertransform.py",
            "testview.py"}
    assert not files & gone
