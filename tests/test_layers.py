# SPDX-License-Identifier: Apache-2.0
"""The package's layout holds: each part imports only parts of lower layers (or its own), and no
modules import each other in a circle. Read from the source with ast: nothing is imported."""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "libvirt_synth"

#: Lowest first. A part may import its own modules and those of any lower layer, never those of a
#: higher layer or of another part of its own (the guest side knows nothing of the host side). The
#: package's top-level modules are the base layer, and may import each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"_native", "abi", "errors", "log", "defaults", "capabilities", "cmdline", "plot", "__init__"}),
    frozenset({"guest", "host", "hook", "vnfd"}),
    frozenset({"xml", "daemon"}),
    frozenset({"inventory", "testbed", "move"}),
    frozenset({"placement"}),
    frozenset({"cli"}),
)


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
    return ".".join(parts)


def part_of(module: str) -> str:
    """libvirt_synth.host.device -> host; libvirt_synth.errors -> errors; libvirt_synth -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(part: str) -> int:
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"libvirt_synth.{part} is in no layer: add it to LAYERS in {__file__}")


def type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for sub in node.body:
                lines.update(n.lineno for n in ast.walk(sub) if isinstance(n, ast.Import | ast.ImportFrom))
    return lines


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports(path: pathlib.Path, runtime_only: bool = False) -> set[str]:
    """The project's modules that path imports (anywhere in it, function bodies included)."""
    tree = ast.parse(path.read_text())
    skip = type_checking_only(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "libvirt_synth":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "libvirt_synth")
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_lower_layers(module: str) -> None:
    mine = part_of(module)
    upward = sorted(dep for dep in imports(MODULES[module])
                    if part_of(dep) != mine and layer(part_of(dep)) >= max(layer(mine), 1))
    assert not upward, f"{module} (layer {layer(mine)}) imports from its own layer or above: {upward}"


def test_no_import_circles() -> None:
    edges = {m: {d for d in imports(p, runtime_only=True) if d in MODULES and d != m} for m, p in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert circles == []


def test_every_package_says_what_it_is_and_may_import() -> None:
    missing = [str(p.relative_to(PKG.parent)) for p in sorted(PKG.rglob("__init__.py"))
               if "import" not in (ast.get_docstring(ast.parse(p.read_text())) or "")]
    assert missing == [], "packages whose docstring does not say what they may import"
