"""The package's layers, checked from its source: no import cycles, no upward imports.

Rooms in data-flow order (see each subpackage's docstring): errors → inputs (the one gate for read paths) →
provenance → config → probes, analysis → model → execution → results → stages → cli. A room may import only the rooms listed for it below.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audit"
EVERYTHING = {"errors", "inputs", "provenance", "config", "probes", "analysis", "model", "execution", "results", "stages",
              "cli"}
ALLOWED = {
    "errors": set(),
    "inputs": {"errors"},
    "provenance": {"errors", "inputs"},
    "config": {"errors"},
    "probes": {"errors", "inputs", "provenance"},
    "analysis": {"errors"},
    "model": {"errors", "inputs", "provenance", "config", "analysis"},
    "execution": {"errors", "inputs", "provenance", "config", "analysis", "model"},
    "results": {"errors", "inputs", "provenance"},
    "stages": {"errors", "inputs", "provenance", "config", "probes", "analysis", "model", "execution", "results"},
    "cli": EVERYTHING - {"cli"},
    "__init__": EVERYTHING,
    "__main__": {"cli"},
}
FORBIDDEN_LIBRARIES = {  # third-party imports a room must not make
    "analysis": {"torch", "transformers", "transformer_lens", "jinja2", "weasyprint"},
    "probes": {"torch", "transformers", "jinja2", "weasyprint"},
    "results": {"torch", "transformers", "transformer_lens"},
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # "from . import x": each name is a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def room(module: str) -> str:
    """``audit.model.harvest`` → ``model``; the package itself → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def violations(root: Path) -> list[str]:
    """Every import that breaks the layer rules, and every import cycle between modules."""
    problems = []
    graph: dict[str, set[str]] = {}
    modules = {module_name(path, root): path for path in root.rglob("*.py")}
    for module, path in sorted(modules.items()):
        own = room(module)
        graph[module] = set()
        for line, target in imports_of(path, root):
            top = target.split(".")[0]
            if top != root.name:
                if top in FORBIDDEN_LIBRARIES.get(own, ()):
                    problems.append(f"{path.relative_to(root.parent)}:{line}: {own} must not import {top}")
                continue
            resolved = target if target in modules else target.rpartition(".")[0]
            if resolved in modules and resolved != module:
                graph[module].add(resolved)
            other = room(target)
            if other != own and other not in ALLOWED.get(own, set()):
                problems.append(f"{path.relative_to(root.parent)}:{line}: {own} must not import {other} ({target})")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (depth-first search)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_room_is_known_and_documented():
    for path in PACKAGE.iterdir():
        name = path.stem if path.suffix == ".py" else path.name
        if path.name.startswith((".", "__pycache__")) or path.name in ("data",) or path.suffix not in ("", ".py"):
            continue
        assert name in ALLOWED, f"{path.name}: a module or room the layer rules do not know"
        if path.is_dir():
            doc = ast.get_docstring(ast.parse((path / "__init__.py").read_text(encoding="utf-8")))
            assert doc and "import" in doc, f"{path.name}/__init__.py must say what the room owns and may import"


def test_package_has_no_cycles_and_no_upward_imports():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize("module, line, expected", [
    ("analysis/selectivity.py", "from ..stages import audit", "analysis must not import stages"),
    ("model/harvest.py", "from ..results.io import dumps", "model must not import results"),
    ("results/report.py", "from ..model.loading import Model", "results must not import model"),
    ("analysis/disparity.py", "import torch", "analysis must not import torch"),
    ("config.py", "from .probes.probeset import ProbeSet", "config must not import probes"),
])
def test_checker_catches_an_upward_import(tmp_path, module, line, expected):
    copy = tmp_path / "audit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    assert any(expected in problem for problem in violations(copy))


def test_checker_catches_a_cycle(tmp_path):
    copy = tmp_path / "audit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    selectivity = copy / "analysis" / "selectivity.py"
    selectivity.write_text(selectivity.read_text(encoding="utf-8") + "\nfrom .disparity import REST\n",
                           encoding="utf-8")
    found = violations(copy)
    assert any(p.startswith("import cycle:") and "audit.analysis.disparity" in p for p in found), found
