"""The floors of mn_runtime._rt (its __init__.py): imports go down or sideways, never up, and
there is no import cycle; an import inside a function says why in a comment above it."""

from __future__ import annotations

import ast
import pathlib

from mn_runtime import _rt

RT = pathlib.Path(_rt.__file__).parent
FLOOR = {mod: i for i, (_, mods) in enumerate(_rt.FLOORS) for mod in mods}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.Module) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """_imports: the sibling modules a file imports at module level and inside functions, with
    line numbers; imports under `if TYPE_CHECKING:` are for the type checker only and skipped."""
    top: list[tuple[str, int]] = []
    infn: list[tuple[str, int]] = []

    def visit(node: ast.AST, in_fn: bool) -> None:
        for ch in ast.iter_child_nodes(node):
            if _is_type_checking(ch):
                continue
            fn = in_fn or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(ch, ast.ImportFrom) and ch.level == 1:
                names = [ch.module.split(".")[0]] if ch.module else [a.name for a in ch.names]
                (infn if in_fn else top).extend((n, ch.lineno) for n in names)
            elif isinstance(ch, (ast.Import, ast.ImportFrom)) and in_fn:
                infn.append((ast.unparse(ch), ch.lineno))
            visit(ch, fn)

    visit(tree, False)
    return top, infn


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {f.stem: _imports(ast.parse(f.read_text()))[0] for f in sorted(RT.glob("*.py")) if f.stem != "__init__"}


def test_every_module_stands_on_one_floor() -> None:
    mods = {f.stem for f in RT.glob("*.py")} - {"__init__"}
    named = [m for _, ms in _rt.FLOORS for m in ms]
    assert len(named) == len(set(named)), "a module is named on two floors"
    assert mods - set(named) == set(), "modules on no floor: add them to _rt.FLOORS"
    # And no floor names a module that does not exist.
    assert set(named) - mods == set(), f"floors name missing modules: {sorted(set(named) - mods)}"


def test_no_import_goes_up_a_floor() -> None:
    bad = []
    for mod, deps in _graph().items():
        for dep, line in deps:
            if dep in FLOOR and FLOOR[dep] > FLOOR[mod]:
                bad.append(
                    f"_rt/{mod}.py:{line} imports {dep} ({_rt.FLOORS[FLOOR[dep]][0]}) from {_rt.FLOORS[FLOOR[mod]][0]}"
                )
    assert bad == []


def test_no_import_cycle() -> None:
    graph = {m: [d for d, _ in deps if d in FLOOR] for m, deps in _graph().items()}
    state: dict[str, int] = {}
    cycles = []

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, []):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*path[path.index(d) :], d]))
            elif d not in state:
                walk(d, [*path, d])
        state[m] = 2

    for m in graph:
        if m not in state:
            walk(m, [m])
    assert cycles == []


def test_imports_inside_functions_say_why() -> None:
    bad = []
    for f in sorted(RT.glob("*.py")):
        lines = f.read_text().splitlines()
        for what, line in _imports(ast.parse("\n".join(lines)))[1]:
            above = [s.strip() for s in lines[max(0, line - 4) : line - 1]]
            if not any(s.startswith("#") for s in above):
                bad.append(f"_rt/{f.name}:{line} imports {what} inside a function with no comment saying why")
    assert bad == []


def test_the_checks_see_a_violation() -> None:
    """The walkers above must find what they look for: an upward import, a cycle, a silent import."""
    top, infn = _imports(ast.parse("from .sched import Sched\ndef f():\n    from .idle import wakep\n"))
    assert top == [("sched", 1)] and infn == [("idle", 3)]
    tc = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sched import Sched\n"
    assert _imports(ast.parse(tc)) == ([], [])
    assert FLOOR["sched"] > FLOOR["g"]
