"""The package's layout, measured: run it before and after a re-cut of numfmt, and compare.

    python bench/layout.py [--json]

All but 6 and 8 is read from numfmt/ on disk with ``ast``; no module path is written here.

1. Rooms: each top-level subpackage of numfmt; on the model floor (nn, models, eval) each
   sub-subpackage (nn.algorithms) is a room too; top-level modules are ``(root)``. Per room:
   .py files, non-blank and all lines.
2. Arrows: for rooms A != B, import statements in A that import a module of B (relative
   imports resolved; a statement naming two rooms counts for each), top level and in
   functions apart. Upward: to a higher floor of formats < arith < quant < {nn, models,
   eval} < lessons < render < plot < cli; (root), and any room not listed, has no floor.
3. Imports in functions: numfmt imports in a function body against those at module level
   (class bodies, ``if TYPE_CHECKING:`` included); a repeat imports a module that its file
   imports at module level too. Private imports across rooms: a name ``_x``, or a module
   path with a ``_part``, from another room; into (root)'s private modules, counted apart.
4. Import by string, per file: ``import_module`` calls on a literal or f-string starting
   ``numfmt`` (literal) or on anything else (dynamic); string constants that are a numfmt
   module path, such as ``"numfmt.cli.formats:show"`` in lazy tables (strings).
5. Annotated: the share of functions (methods included; not functions nested in functions)
   with every parameter but self/cls (*args, **kwargs too) annotated and a return
   annotation (``__init__`` needs none).
6. The recipe's path: ``numfmt model quantize <tiny random llama> --recipe int4/group:64
   --out q.safetensors`` in-process (click's CliRunner) under ``sys.setprofile``. A call into
   numfmt is traced when an argument (self included, and the items of *args, **kwargs) is
   the string "int4/group:64" or an object of a class named Recipe or QuantScheme.
   Crossings: traced calls whose nearest traced caller (up f_back, skipping untraced frames)
   is in another room, as calls and as distinct caller -> callee functions (edges). Parses:
   calls of numfmt functions named parse_recipe, parse_scheme, _scheme or parse (any
   class's, Rounding's too) whose first argument after self/cls is a str; and all of them.
7. Strings or objects: parameters whose annotation has a union (``|``, Union, Optional) of
   ``str`` and Recipe, QuantScheme, FloatFormat, IntFormat, Format or Scheme (``Recipe | str
   | dict``, ``list[QuantScheme | str]``; not ``tuple[str, QuantScheme]``).
8. Duplicates: the pairs that ``duplicates`` (DUPLICATES below, from the repository root)
   counts in numfmt/.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "numfmt"
MODEL_FLOOR = ("nn", "models", "eval")
FLOORS = ["formats", "arith", "quant", MODEL_FLOOR, "lessons", "render", "plot", "cli"]
FLOOR = {room: i for i, f in enumerate(FLOORS) for room in ([f] if isinstance(f, str) else f)}
RECIPE, RECIPE_CLASSES = "int4/group:64", {"Recipe", "QuantScheme"}
PARSERS = {"parse_recipe", "parse_scheme", "_scheme", "parse"}
OBJECT = re.compile(r"Recipe|QuantScheme|FloatFormat|IntFormat|Format|Scheme")
MODULE_PATH = re.compile(r"numfmt(\.\w+)+(:\w+)?")
DUPLICATES = ["duplicates", "--repo", "numfmt", "--min-lines", "6", "--most", "1"]
DUPLICATES += ["--seconds", "120"]
ROOM_KEYS = ["modules", "nonblank", "lines", "imports_top", "imports_function"]
ROOM_KEYS += ["in_function_share", "repeats", "functions", "annotated", "annotated_share"]
BY_STRING = ("literal", "dynamic", "strings")
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
TINY = dict(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            tie_word_embeddings=True)  # fmt: skip


def room_of(module: str) -> str:
    """The room of a dotted module name (numfmt.nn.recipe -> nn)."""
    parts = module.removesuffix(".__init__").split(".")[1:]
    if not parts or not (PKG / parts[0]).is_dir():
        return "(root)"
    if parts[0] in MODEL_FLOOR and len(parts) > 1 and (PKG / parts[0] / parts[1]).is_dir():
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def floor(room: str) -> int | None:
    return FLOOR.get(room.split(".")[0])


def find_modules() -> dict[str, Path]:
    """Every numfmt module on disk, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        found[".".join(("numfmt", *path.relative_to(PKG).with_suffix("").parts))] = path
    return {name.removesuffix(".__init__"): path for name, path in found.items()}


def targets(node: ast.AST, here: str, is_pkg: bool, modules: dict) -> list[tuple[str, str]]:
    """(module, name imported) for each numfmt module the import ``node`` reads."""

    def known(name: str) -> str:  # the longest prefix of name that is a module
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    if isinstance(node, ast.Import):
        return [(known(a.name), "") for a in node.names if a.name.split(".")[0] == "numfmt"]
    base = node.module or ""
    if node.level:
        package = here.split(".")[: len(here.split(".")) - node.level + is_pkg]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] != "numfmt":
        return []
    return [(known(f"{base}.{a.name}"), a.name) for a in node.names]


def is_private(module: str, name: str) -> bool:
    private_name = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
    return private_name or any(p.startswith("_") for p in module.split("."))


def is_recipe(value) -> bool:
    """Whether ``value`` is the recipe: its string, or an object of a recipe class."""
    return type(value).__name__ in RECIPE_CLASSES or (isinstance(value, str) and value == RECIPE)


def called(node: ast.Call | ast.Subscript) -> str | None:
    """The name called or subscripted: ``f`` of ``f(...)``, ``a.b.f(...)``, ``a.f[...]``."""
    func = node.func if isinstance(node, ast.Call) else node.value
    return getattr(func, "attr", getattr(func, "id", None))


def walk(node: ast.AST, in_func: bool = False):
    """Every node below ``node``, with whether it sits inside a function body."""
    for child in ast.iter_child_nodes(node):
        yield child, in_func
        yield from walk(child, in_func or isinstance(child, (*FUNCTIONS, ast.Lambda)))


def str_or_object(annotation: ast.expr | None) -> bool:
    """Whether an annotation holds a union (``|``, Union, Optional) of str and a named class."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:  # a quoted annotation
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    for node in ast.walk(annotation) if annotation else ():
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            members = [node.left, node.right]
        elif isinstance(node, ast.Subscript) and called(node) in ("Union", "Optional"):
            members = getattr(node.slice, "elts", [node.slice])
        else:
            continue
        names = {ast.unparse(m).rsplit(".", 1)[-1] for m in members}
        if "str" in names and any(OBJECT.fullmatch(n) for n in names):
            return True
    return False


def read_package() -> dict:
    """Measures 1 to 5 and 7, from the source."""
    modules = find_modules()
    rooms = defaultdict(Counter)  # room -> modules, lines, imports, functions ...
    arrows = Counter()  # (from, to, "top" | "function") -> import statements
    private, private_root, either, by_string = [], [], [], defaultdict(Counter)
    for here, path in modules.items():
        rel, room, r = path.relative_to(ROOT).as_posix(), room_of(here), rooms[room_of(here)]
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        r.update(modules=1, nonblank=sum(1 for x in lines if x.strip()), lines=len(lines))
        top, inner = set(), []
        for node, in_func in walk(ast.parse(text, filename=rel)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found = targets(node, here, path.name == "__init__.py", modules)
                if not found:
                    continue
                scope = "function" if in_func else "top"
                r[f"imports_{scope}"] += 1
                mods = {m for m, _ in found}
                inner.append(mods) if in_func else top.update(mods)
                for other in {room_of(m) for m in mods} - {room}:
                    arrows[room, other, scope] += 1
                for m, name in found:
                    if room_of(m) != room and is_private(m, name):
                        source = "." * node.level + (node.module or "")
                        line = f"from {source} import {name}" if name else f"import {m}"
                        where = private_root if room_of(m) == "(root)" else private
                        where.append(f"{rel}:{node.lineno} {line}")
            elif isinstance(node, ast.Call) and called(node) == "import_module":
                arg = node.args[0] if node.args else None
                arg = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else arg
                literal = isinstance(arg, ast.Constant) and str(arg.value).startswith("numfmt")
                by_string[rel]["literal" if literal else "dynamic"] += 1
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                by_string[rel]["strings"] += bool(MODULE_PATH.fullmatch(node.value))
            elif isinstance(node, FUNCTIONS):
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                params = [p for p in params if p is not None and p.arg not in ("self", "cls")]
                either += [f"{rel}:{p.lineno} {node.name}({ast.unparse(p)})" for p in params
                           if str_or_object(p.annotation)]  # fmt: skip
                if not in_func:
                    returns = node.returns is not None or node.name == "__init__"
                    r.update(functions=1, annotated=returns and all(p.annotation for p in params))
        r["repeats"] += sum(1 for mods in inner if mods & top)
    by_string = {f: dict(c) for f, c in sorted(by_string.items()) if sum(c.values())}
    return dict(rooms=rooms, arrows=arrows, private=private, private_root=private_root,
                by_string=by_string, either=either)  # fmt: skip


def trace_recipe() -> dict:
    """Measure 6: ``numfmt model quantize`` on a tiny random Llama, tracing the recipe."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from click.testing import CliRunner
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT))  # the numfmt beside this script, not another checkout's
    from numfmt.cli import main as cli

    if not Path(sys.modules["numfmt"].__file__).is_relative_to(PKG):
        raise SystemExit(f"numfmt was imported from {sys.modules['numfmt'].__file__}, not {PKG}")

    places: dict = {}  # code -> (file:function, room), or None outside numfmt
    live: dict[int, tuple] = {}  # id(frame) -> (file:function, room) of traced frames running
    calls, crossings, edges = Counter(), Counter(), set()
    parses = defaultdict(lambda: [0, 0])  # file:function -> [calls on a str, all calls]

    def place(code):
        if code not in places:
            path = Path(code.co_filename)
            inside = path.is_relative_to(PKG) and path.suffix == ".py"
            rel = path.relative_to(ROOT) if inside else path
            name = f"{rel.as_posix()}:{getattr(code, 'co_qualname', code.co_name)}"
            places[code] = (name, room_of(".".join(rel.with_suffix("").parts))) if inside else None
        return places[code]

    def profile(frame, event, arg):
        if event == "return":
            live.pop(id(frame), None)
        if event != "call" or (at := place(frame.f_code)) is None:
            return
        code, local, flags = frame.f_code, frame.f_locals, frame.f_code.co_flags
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        values = [local.get(v) for v in names]
        extra = code.co_varnames[len(names) :]
        if flags & inspect.CO_VARARGS:
            values += list(local.get(extra[0], ()))
        if flags & inspect.CO_VARKEYWORDS:
            values += list(local.get(extra[bool(flags & inspect.CO_VARARGS)], {}).values())
        if code.co_name in PARSERS:
            first = [v for v in names if v not in ("self", "cls")][:1]
            parses[at[0]][1] += 1
            parses[at[0]][0] += bool(first) and isinstance(local.get(first[0]), str)
        if not any(map(is_recipe, values)):
            return
        calls[at[0]] += 1
        live[id(frame)] = at
        caller = frame.f_back
        while caller is not None and id(caller) not in live:
            caller = caller.f_back
        if caller is not None and live[id(caller)][1] != at[1]:
            crossings[f"{live[id(caller)][1]} -> {at[1]}"] += 1
            edges.add((f"{live[id(caller)][1]} -> {at[1]}", f"{live[id(caller)][0]} -> {at[0]}"))

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**TINY)).save_pretrained(f"{tmp}/m", safe_serialization=True)
        out = f"{tmp}/q.safetensors"
        args = ["model", "quantize", f"{tmp}/m", "--recipe", RECIPE, "--out", out]
        sys.setprofile(profile)
        try:
            result = CliRunner().invoke(cli, args)
        finally:
            sys.setprofile(None)
    directions = Counter(d for d, _ in edges)
    return {
        "exit_code": result.exit_code,
        "error": None if result.exit_code == 0 else (result.output[-2000:] or repr(result)),
        "files": sorted({f.split(":")[0] for f in calls}),
        "functions": dict(sorted(calls.items())),
        "crossings": {d: {"calls": c, "edges": directions[d]} for d, c in crossings.items()},
        "crossing_edges": sorted(e for _, e in edges),
        "parses_from_str": sum(c[0] for c in parses.values()),
        "parses_all": sum(c[1] for c in parses.values()),
        "parses_by_function": dict(sorted(parses.items())),
    }


def run_duplicates() -> dict:
    """Measure 8: the first line of ``duplicates``, parsed."""
    try:
        out = subprocess.run(DUPLICATES, cwd=ROOT, capture_output=True, text=True).stdout
    except FileNotFoundError:
        out = "duplicates is not on PATH"
    first = (out.splitlines() or [""])[0]
    count = re.match(r"(\d+) pairs? of places", first)
    pairs = int(count[1]) if count else 0 if first.startswith("no duplicates") else None
    notes = [line for line in out.splitlines() if line.startswith("incomplete")]
    return {"command": " ".join(DUPLICATES), "pairs": pairs, "first_line": first, "notes": notes}


def measure() -> dict:
    read = read_package()
    order = sorted(read["rooms"], key=lambda r: (r != "(root)", floor(r) or 0, r))
    rooms = {r: read["rooms"][r] for r in order}
    rooms["total"] = sum(rooms.values(), Counter())
    for name, r in rooms.items():
        imports = max(1, r["imports_function"] + r["imports_top"])
        r["in_function_share"] = round(r["imports_function"] / imports, 3)
        r["annotated_share"] = round(r["annotated"] / max(1, r["functions"]), 3)
        rooms[name] = {k: r[k] for k in ROOM_KEYS}
    pairs = {}
    for a, b, scope in sorted(read["arrows"]):
        pairs.setdefault(f"{a} -> {b}", Counter())[scope] = read["arrows"][a, b, scope]
    floors = {p: [floor(r) for r in p.split(" -> ")] for p in pairs}
    path, dup = trace_recipe(), run_duplicates()
    crossed = path["crossings"].values()
    summary = {
        "rooms": len(order),
        **{k: rooms["total"][k] for k in ("modules", "nonblank", "lines")},
        "arrow_pairs": len(pairs),
        "arrows_top": sum(p["top"] for p in pairs.values()),
        "arrows_in_function": sum(p["function"] for p in pairs.values()),
        "upward": [p for p, (a, b) in floors.items() if None not in (a, b) and a < b],
        **{k: rooms["total"][k] for k in ("in_function_share", "repeats", "annotated_share")},
        "private_across_rooms": len(read["private"]),
        "private_into_root": len(read["private_root"]),
        **{k: sum(c.get(k, 0) for c in read["by_string"].values()) for k in BY_STRING},
        "recipe_files": len(path["files"]),
        "recipe_functions": len(path["functions"]),
        "crossing_calls": sum(c["calls"] for c in crossed),
        "crossing_edges": sum(c["edges"] for c in crossed),
        "parses_from_str": path["parses_from_str"],
        "parses_all": path["parses_all"],
        "strings_or_objects": len(read["either"]),
        "duplicate_pairs": dup["pairs"],
    }
    return {"summary": summary, "rooms": rooms, "arrows": pairs, "private": read["private"],
            "private_into_root": read["private_root"], "import_by_string": read["by_string"],
            "strings_or_objects": read["either"], "recipe_path": path,
            "duplicates": dup}  # fmt: skip


def table(head: list[str], rows: list[list]) -> list[str]:
    rows = [head, *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    pad = [str.ljust] + [str.rjust] * (len(head) - 1)
    return ["  ".join(f(c, w) for f, c, w in zip(pad, row, widths, strict=True)) for row in rows]


def report(m: dict) -> str:
    s, p = m["summary"], m["recipe_path"]
    out = ["Summary", *(f"  {k}: {v}" for k, v in s.items()), "", "1, 3, 5. Rooms"]
    head = ["room", "modules", "nonblank", "lines", "imp top", "imp in fn", "in-fn share"]
    head += ["repeats", "functions", "annotated", "share"]
    out += table(head, [[r, *v.values()] for r, v in m["rooms"].items()])
    out += ["", f"2. Arrows between rooms (import statements; upward: {s['upward'] or 'none'})"]
    rows = [[k, v["top"], v["function"], v["top"] + v["function"]] for k, v in m["arrows"].items()]
    out += table(["from -> to", "top", "in fn", "all"], rows)
    out += ["", f"3. Private imports across rooms: {len(m['private'])}", *m["private"]]
    out += ["", f"3. Private imports of (root)'s private modules: {len(m['private_into_root'])}"]
    out += m["private_into_root"]
    rows = [[f, *(c.get(k, 0) for k in BY_STRING)] for f, c in m["import_by_string"].items()]
    out += ["", "4. Import by string", *table(["file", "literal", "dynamic", "strings"], rows)]
    out += ["", f"6. The recipe's path (exit code {p['exit_code']})", *filter(None, [p["error"]])]
    out += [f"{len(p['files'])} files, {len(p['functions'])} functions (calls):"]
    out += [f"  {f}  {n}" for f, n in p["functions"].items()]
    rows = [[d, c["calls"], c["edges"]] for d, c in sorted(p["crossings"].items())]
    out += ["crossings:", *table(["caller -> callee room", "calls", "edges"], rows)]
    out += [f"  {e}" for e in p["crossing_edges"]]
    out += [f"parses: {p['parses_from_str']} from a str, of {p['parses_all']} calls:"]
    out += [f"  {f}  {a} / {b}" for f, (a, b) in p["parses_by_function"].items()]
    out += ["", f"7. Strings or objects: {s['strings_or_objects']} parameters"]
    out += [f"  {x}" for x in m["strings_or_objects"]]
    d = m["duplicates"]
    out += ["", f"8. Duplicates: {d['pairs']} pairs [{d['command']}]", f"  {d['first_line']}"]
    return "\n".join(out + d["notes"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    as_json = parser.parse_args().json
    measured = measure()
    print(json.dumps(measured, indent=1) if as_json else report(measured))
