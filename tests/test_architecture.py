"""The house: floors that import only downward, no circle, small modules and functions, click only
in the CLI, no default written by hand into a help text. Walks the source with `ast`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vnarrate"

# Floors, top to bottom. A module may import its own floor's siblings (within a package) and any
# floor below it, never one above.
FLOORS: list[tuple[str, set[str]]] = [
    # The faces: the command line, the Python API, and the package itself (which loads the API
    # on first use). They may import each other.
    ("faces", {"cli", "api", "__main__", "__init__"}),
    ("runs", {"runs"}),
    ("pipeline", {"pipeline"}),
    ("session", {"session"}),
    ("stages", {"vision", "narration", "soundtrack"}),
    ("services", {"media", "server"}),
    ("foundation", {"settings", "envfile"}),
    ("base", {"models", "errors", "version"}),
]
# Within the stage floors, the order between packages (an arrow only points down this list).
STAGE_ORDER = ["vision", "narration", "soundtrack", "media", "server"]
HEAVY = {"cv2", "av", "numpy", "openai", "websockets", "httpx2", "onnxruntime", "rich"}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, dotted under vnarrate ("runs.jobs")
    target: str  # imported module, dotted under vnarrate, or a third-party top-level name
    own: bool
    lazy: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`
    line: int


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


def _resolve(module: str, path: Path, level: int, name: str | None) -> str:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *(name.split(".") if name else [])])


def _imports() -> list[Import]:
    found: list[Import] = []
    for module, path in _modules():
        tree = ast.parse(path.read_text())

        def visit(
            node: ast.AST, lazy: bool, type_only: bool, mod: str = module, path: Path = path
        ) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    for stmt in child.body:
                        visit_stmt(stmt, lazy, True, mod)
                    for stmt in child.orelse:
                        visit_stmt(stmt, lazy, type_only, mod)
                    continue
                visit_stmt(child, lazy, type_only, mod)

        def visit_stmt(
            child: ast.AST, lazy: bool, type_only: bool, mod: str, path: Path = path
        ) -> None:
            is_func = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    target = _resolve(mod, path, child.level, child.module)
                    names = [a.name for a in child.names]
                    for n in names:
                        sub = f"{target}.{n}" if target else n
                        own_target = (
                            sub
                            if (SRC / Path(*sub.split("."))).exists()
                            or (SRC / (sub.replace(".", "/") + ".py")).exists()
                            else target
                        )
                        found.append(
                            Import(
                                mod, own_target or "__init__", True, lazy, type_only, child.lineno
                            )
                        )
                elif child.module and child.module.split(".")[0] == "vnarrate":
                    target = child.module.removeprefix("vnarrate").lstrip(".") or "__init__"
                    found.append(Import(mod, target, True, lazy, type_only, child.lineno))
                elif child.module:
                    found.append(
                        Import(
                            mod, child.module.split(".")[0], False, lazy, type_only, child.lineno
                        )
                    )
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    top = alias.name.split(".")[0]
                    own = top == "vnarrate"
                    target = alias.name.removeprefix("vnarrate.") if own else top
                    found.append(Import(mod, target, own, lazy, type_only, child.lineno))
            visit(child, lazy or is_func, type_only, mod)

        visit(tree, False, False)
    return found


IMPORTS = _imports()


def _floor(module: str) -> int:
    top = module.split(".")[0]
    for i, (_, members) in enumerate(FLOORS):
        if top in members:
            return i
    raise AssertionError(f"{module} is on no floor: add its package to FLOORS")


def _package(module: str) -> str:
    return module.split(".")[0]


def test_every_module_is_on_a_floor() -> None:
    for module, _ in _modules():
        _floor(module)


def test_floors_import_only_downward() -> None:
    wrong = []
    for imp in IMPORTS:
        if not imp.own or imp.type_only:
            continue
        src, dst = _floor(imp.module), _floor(imp.target)
        same_package = _package(imp.module) == _package(imp.target)
        if dst < src or (dst == src and not same_package and FLOORS[src][0] == "runs"):
            wrong.append(f"{imp.module} -> {imp.target} (line {imp.line})")
        if dst == src and not same_package and FLOORS[src][0] in ("stages", "services"):
            a, b = STAGE_ORDER.index(_package(imp.module)), STAGE_ORDER.index(_package(imp.target))
            if b < a:
                wrong.append(f"{imp.module} -> {imp.target} (line {imp.line})")
        if FLOORS[src][0] == "services" and FLOORS[dst][0] == "stages":
            wrong.append(f"{imp.module} -> {imp.target} (line {imp.line})")
    assert not wrong, "imports that point up a floor:\n" + "\n".join(wrong)


def test_media_knows_nothing_of_openai_or_the_stages() -> None:
    for imp in IMPORTS:
        if imp.module.startswith("media"):
            assert imp.target != "openai", imp
            assert not imp.own or _package(imp.target) in ("media", "models", "errors"), imp


def test_pipeline_never_sees_settings_or_runs() -> None:
    for imp in IMPORTS:
        if imp.module == "pipeline" and imp.own:
            assert _package(imp.target) not in ("settings", "runs", "cli", "api"), imp


def test_click_only_in_the_cli() -> None:
    users = {imp.module for imp in IMPORTS if imp.target == "click"}
    assert users and all(m.startswith("cli") for m in users), users


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.own and not imp.type_only and imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)

    def modules_of(target: str) -> str:
        return target

    seen: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package __init__ that merely re-exports is its own node.
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in seen:
                dfs(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            dfs(node)


def test_lazy_imports_only_for_heavy_libraries() -> None:
    own_lazy = [i for i in IMPORTS if i.lazy and i.own]
    assert len(own_lazy) <= 10, own_lazy
    light_lazy = [
        i
        for i in IMPORTS
        if i.lazy and not i.own and i.target not in HEAVY | {"dotenv", "jsonschema"}
    ]
    assert not light_lazy, light_lazy


def _line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_module_and_layer_sizes() -> None:
    sizes = {module: _line_count(path) for module, path in _modules()}
    big = {m: n for m, n in sizes.items() if n > 600}
    assert not big, big
    assert sizes["pipeline"] <= 400
    cli = sum(n for m, n in sizes.items() if m == "cli" or m.startswith("cli."))
    assert cli <= 450, cli
    packages = {m.split(".")[0] for m in sizes if "." in m}
    assert len(packages) >= 3


def test_functions_stay_short() -> None:
    long = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, long


@pytest.mark.parametrize("module", [m for m, _ in _modules() if m.startswith("cli")])
def test_no_default_typed_into_a_help_text(module: str) -> None:
    text = (SRC / Path(*module.split("."))).with_suffix(".py")
    path = text if text.exists() else SRC / Path(*module.split(".")) / "__init__.py"
    source = path.read_text()
    # "[768]" or "[default: 48]" written by hand; the generated help adds them from Settings.
    assert not re.search(r"help=.*\[(default: )?[-\d.]+\]", source), module
