"""Imports point one way (notes/CONVENTIONS.md): inside each package of vidstyle, no module
imports one that imports it back, not even from inside a function (vidstyle.io's probe and
sequence modules once did), so every module can be read, imported and tested on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vidstyle

ROOT = Path(vidstyle.__file__).parent
PACKAGES = sorted({p.parent.name for p in ROOT.glob("*/*.py")})


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The `modules` that `path` imports anywhere in it (TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(n for n in [node.module, *names] if n in modules)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_of_a_package_import_each_other_one_way(package: str):
    files = {module_name(p): p for p in (ROOT / package).glob("*.py")}
    parent = f"vidstyle.{package}"  # every submodule imports its package: not an arrow back
    graph = {name: imported(path, set(files)) - {name, parent} for name, path in files.items()}

    def cycle_from(start: str, node: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path and (found := cycle_from(start, nxt, [*path, nxt])):
                return found
        return None

    cycles = [c for name in sorted(graph) if (c := cycle_from(name, name, [name]))]
    assert not cycles, " -> ".join(cycles[0])
