"""The house rules of imports: floors only downwards, the model floor's rooms in order, no
cycles inside a floor, and no import by string that these tests could not see."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "numfmt"
#: Each floor may import those before it; the rooms of one floor share it.
FLOORS = [
    ("formats",),
    ("arith",),
    ("quant",),
    ("nn", "models", "eval"),  # the model floor
    ("lessons",),
    ("render",),
    ("plot",),
    ("cli",),
]
#: The model floor's rooms, each importing only those before it (``numfmt.nn``'s facade,
#: which keeps the floor's public names where the README shows them, excepted).
MODEL_ROOMS = ["nn", "models", "eval"]
#: The lazy tables (name -> module) of the packages that load their parts on first use.
LAZY_TABLES = ("_EXPORTS", "_LAZY", "COMMANDS")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = PACKAGE.parent / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    """module -> the numfmt modules it imports: at the top, inside a function, or through a
    lazy table of names (a facade's ``_EXPORTS``)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        deps = set()
        for node in _runtime_nodes(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("numfmt")
            ):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if _is_module(sub) else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("numfmt")}
        deps |= _lazy_targets(tree, module)
        graph[module] = deps - {module}
    return graph


def _lazy_targets(tree: ast.Module, package: str) -> set[str]:
    """The modules a package's lazy table names (full names, or names inside the package)."""
    out = set()
    for node in tree.body:
        if not (isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not any(getattr(t, "id", None) in LAZY_TABLES for t in targets):
            continue
        for value in node.value.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                name = value.value.split(":")[0]
                full = name if name.startswith("numfmt") else f"{package}.{name}"
                assert _is_module(full), f"{package}'s lazy table names {name}, not a module"
                out.add(full)
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and any(parts[1] in f for f in FLOORS) else None


def _floor(module: str) -> int | None:
    room = _room(module)
    return None if room is None else next(i for i, f in enumerate(FLOORS) if room in f)


def test_floors_import_only_downwards():
    wrong = []
    for module, deps in _graph().items():
        mine = _floor(module)
        if mine is None:
            continue
        wrong += [f"{module} -> {d}" for d in deps if (_floor(d) or 0) > mine]
    assert not wrong, wrong


def test_the_model_floor_rooms_import_in_order():
    """nn (layers, recipes, the quantize path, its algorithms) <- models (sources and
    sinks) <- eval (measurement)."""
    wrong = []
    for module, deps in _graph().items():
        if module == "numfmt.nn" or _room(module) not in MODEL_ROOMS:
            continue
        mine = MODEL_ROOMS.index(_room(module))
        for dep in deps:
            if _room(dep) in MODEL_ROOMS and MODEL_ROOMS.index(_room(dep)) > mine:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, wrong


def test_only_the_display_mixin_reaches_up_and_it_does_so_by_a_plain_import():
    """Root modules (``numfmt._display`` ...) serve every floor: the one that reaches up is
    ``_display``, which loads a result's views from ``numfmt.render`` on its first view."""
    graph = _graph()
    roots = [m for m in graph if m.count(".") == 1 and _room(m) is None]
    up = {m: sorted(d for d in graph[m] if _room(d) is not None) for m in roots}
    up = {m: d for m, d in up.items() if d and m not in ("numfmt.__main__",)}
    assert up == {"numfmt._display": ["numfmt.render"]}


def test_no_module_is_imported_by_a_string_these_tests_cannot_see():
    """``importlib.import_module`` serves the lazy tables (whose names the graph reads) and
    ``_extras.require`` (third-party packages) only."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        text = path.read_text()
        if "import_module(" not in text or module == "numfmt._extras":
            continue
        tree = ast.parse(text)
        tables = {
            getattr(t, "id", None)
            for node in tree.body
            if isinstance(node, ast.Assign)
            for t in node.targets
        }
        if not tables & set(LAZY_TABLES):
            found.append(module)
    assert not found, found


# arith is not yet here: Context's methods (ctx.add ...) call elementwise, which takes a Context
@pytest.mark.parametrize("layer", ["formats", "quant", "nn", "models", "eval", "lessons", "render"])
def test_no_import_cycles_inside_a_layer(layer):
    graph = {
        m: {d for d in deps if d.startswith(f"numfmt.{layer}.")}
        for m, deps in _graph().items()
        if m.startswith(f"numfmt.{layer}.")
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycle.extend([*path[path.index(dep) :], dep])
                return True
            if state.get(dep) is None and visit(dep, [*path, dep]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)
