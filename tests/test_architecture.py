"""The package's folders show its layers, and imports only go down them (src/mmjsd/__init__.py)."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "mmjsd"
# bottom first; a module may import from its own layer and those before it
LAYERS = ["errors", "core", "lab", "artifacts", "data", "networks", "models", "training", "evaluation",
          "reporting", "config", "pipeline", "cli"]
TOP_LEVEL = {"__init__", "__main__", "cli", "config", "errors"}


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "cli"
    return LAYERS.index("cli" if part == "__main__" else part)


def _imports():
    """(importing module, imported mmjsd module) for every import statement, also inside functions."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmjsd"):
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "mmjsd" else [node.module]
                yield from ((module, name) for name in names if name != "mmjsd.__version__")
            elif isinstance(node, ast.Import):
                yield from ((module, a.name) for a in node.names if a.name.startswith("mmjsd."))


def test_the_top_level_holds_only_the_entry_points_config_and_errors():
    loose = {p.stem for p in PACKAGE.glob("*.py")} - TOP_LEVEL
    assert not loose, f"modules outside a folder: {sorted(loose)}"


def test_no_import_runs_back_up_the_layers():
    back = sorted({(a, b) for a, b in _imports() if a != "mmjsd" and _layer(b) > _layer(a)})
    assert not back, back


def test_the_snakefile_and_benchmarks_never_edit_sys_path():
    files = [REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk"), *(REPO / "benchmarks").rglob("*.py")]
    assert [str(f) for f in files if "sys.path.insert" in f.read_text()] == []
