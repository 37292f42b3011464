"""The package map holds: no import runs from a lower layer to a higher one, and no two
modules import each other, however the import is written (at the top, inside a function,
or for type checking only). The map is docs/packages.md; change both together."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "webcall_widget"

# Lowest first: each part may import the parts of lower layers only.
LAYERS: list[set[str]] = [
    # foundations: no knowledge of calls, settings or the database
    {
        "schema",
        "seams",
        "strings",
        "storable",
        "redaction",
        "spacing",
        "pcm",
        "origins",
        "embed",
        "signals",
        "channel_layers",
        "metrics",
        "leases",
    },
    {"voicehub", "http"},  # the upstream; what every HTTP endpoint does alike
    {"conf"},  # settings
    {"models"},  # what is stored
    {"access", "limits", "retention", "export", "forms", "cors", "migrations"},  # rules over it
    {"calls"},  # starting a call
    {"usage", "relay", "webhooks", "sandbox", "probe", "assets"},  # the services
    {
        "views",
        "admin",
        "checks",
        "templatetags",
        "management",
        "routing",
        "health",
    },  # entry points
    {"urls", "apps", "__init__"},  # wiring
]


def part_of(module: str) -> str:
    """``webcall_widget.relay.bridge`` -> ``relay``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every module of the package ``path`` imports, with the line, wherever it is written."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from a.b import c": the module a.b.c if it is one, else (a name in) a.b.
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            found = [name for name in submodules if name in known]
            if not found and node.module in known:
                found = [node.module]
            for name in found:
                yield name, node.lineno


def graph() -> dict[str, set[tuple[str, int]]]:
    found = modules()
    known = set(found)
    return {module: set(imports(path, known)) - {(module, 0)} for module, path in found.items()}


def layer_of(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"{part!r} is on no layer: add it to LAYERS and to docs/packages.md")


def test_every_part_of_the_package_is_on_the_map():
    parts = {part_of(module) for module in modules()}
    for part in parts:
        layer_of(part)


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = []
    for module, targets in graph().items():
        here = layer_of(part_of(module))
        for target, line in targets:
            there = layer_of(part_of(target))
            if there > here:
                upward.append(f"{module}:{line} imports {target} (layer {here} -> {there})")
    assert upward == []


def test_parts_of_one_layer_do_not_import_each_other():
    sideways = []
    for module, targets in graph().items():
        here = part_of(module)
        for target, line in targets:
            there = part_of(target)
            if there != here and layer_of(there) == layer_of(here):
                sideways.append(f"{module}:{line} imports {target}")
    assert sideways == []


def test_no_modules_import_each_other_even_inside_a_function():
    edges = {module: {target for target, _ in targets} for module, targets in graph().items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("folder", ["relay"])
def test_no_relay_file_is_over_500_lines(folder):
    long = {
        path.name: lines
        for path in (PACKAGE / folder).glob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}


def test_only_the_relays_edges_speak_channels():
    speaking = set()
    for path in (PACKAGE / "relay").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            # channels.db: database_sync_to_async, which records uses
            if module.startswith("channels") and module != "channels.db":
                speaking.add(path.stem)
    assert speaking == {"consumer", "mailbox", "remote", "adoption"}
