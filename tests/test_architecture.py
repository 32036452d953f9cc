"""The house rules of the package, read from its source: imports run one way, there are no import
cycles, and the core stays stdlib-only (the prompt hook imports it on every prompt).

Every import counts, lazy ones inside functions and `TYPE_CHECKING` ones included: a lazy import
against the rule is still a dependency against the rule. The layers are written down in the
README's Development section.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid_router"

# What each part of the package may import, besides itself and `hybrid_router` (the version).
# cli -> surfaces -> services -> core; a surface never imports another surface.
CORE = {"core"}
SERVICES = {
    "config": CORE,
    "log": CORE,
    "providers": CORE | {"config"},
    "install": CORE | {"config"},
}
SERVICE_NAMES = set(SERVICES)
SURFACES = {name: CORE | SERVICE_NAMES for name in ("proxy", "mcp_server", "hooks", "dashboard")}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    **SERVICES,
    **SURFACES,
    "cli": CORE | SERVICE_NAMES | set(SURFACES),
    # The console script: straight to the hooks' lean modules, else the CLI.
    "entry": {"cli", "hooks"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The top-level part (`core`, `log`, `cli`, `entry`...) a dotted module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every hybrid_router import in the file, at any depth."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` imports the module x when there is one
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(candidate) else target))
    return [(line, name) for line, name in found if name.split(".")[0] == "hybrid_router"]


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (PACKAGE / relative).with_suffix(".py").exists() or (
        PACKAGE / relative / "__init__.py"
    ).exists()


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_a_known_part():
    unknown = {m for m in all_modules() if m != "hybrid_router" and part_of(m) not in ALLOWED}
    assert not unknown, (
        f"modules outside the layout (add them to a package, or to ALLOWED): {unknown}"
    )


def test_imports_run_one_way():
    wrong: list[str] = []
    for module, path in all_modules().items():
        source = part_of(module)
        for line, target in imports_of(path):
            aim = part_of(target)
            if aim in ("", source):
                continue  # the package root (version) or the same part
            if aim not in ALLOWED.get(source, set()):
                wrong.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {source} imports {target}"
                )
    assert not wrong, "imports against the layering rule:\n" + "\n".join(wrong)


def test_there_are_no_import_cycles():
    graph = {
        module: {target for _, target in imports_of(path)} for module, path in all_modules().items()
    }
    # A package imports its own __init__ when any of its modules is imported: that is no cycle.
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                result.append(component)
    return result


def test_the_core_imports_only_the_standard_library():
    third_party: list[str] = []
    for module, path in all_modules().items():
        if part_of(module) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "hybrid_router" and top not in sys.stdlib_module_names:
                    third_party.append(f"{path.name}:{node.lineno}: {name}")
    assert not third_party, third_party


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("core", "log", False),
        ("log", "core", True),
        ("proxy", "dashboard", False),
        ("cli", "proxy", True),
        ("providers", "install", False),
    ],
)
def test_the_rule_itself(source, target, allowed):
    """The rule enforced is the one the README states (a guard against a loosened table)."""
    assert (target in ALLOWED[source]) is allowed
