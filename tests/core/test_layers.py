"""The layering of docs/architecture.md holds: a package imports only from its own layer or the
layers above it, and ``regional_client`` never imports ``regional_rack``.

Every ``import`` and ``from ... import`` in the source is read (function-level ones included,
``TYPE_CHECKING`` blocks excepted: type names do not make a dependency at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS = [
    {"core"},
    {"config", "model", "store"},
    {"tasks"},
    {"api"},
    {"dhcp", "tftp", "pxe", "httpboot", "drivers", "agentapi", "workflow", "agent"},
    {"daemon", "cli"},
]
LAYER = {pkg: i for i, group in enumerate(LAYERS) for pkg in group}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(SRC / "regional_client")
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else ""


def test_layers() -> None:
    wrong = []
    for path in sorted((SRC / "regional_client").rglob("*.py")):
        pkg = _package(path)
        for line, mod in _imports(ast.parse(path.read_text(), str(path))):
            if mod.split(".")[0] == "regional_rack":
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {mod}")
                continue
            parts = mod.split(".")
            if parts[0] != "regional_client" or len(parts) < 2 or not pkg:
                continue
            target = parts[1]
            if target in LAYER and pkg in LAYER and LAYER[target] > LAYER[pkg]:
                wrong.append(f"{path.relative_to(SRC)}:{line} ({pkg}) imports {mod} (lower)")
    assert wrong == []


def test_every_package_has_a_layer() -> None:
    pkgs = {p.name for p in (SRC / "regional_client").iterdir() if (p / "__init__.py").exists()}
    assert pkgs == set(LAYER)
