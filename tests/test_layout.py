"""The shape of ``server/``: capabilities talk through services, the rules stay pure.

These hold the layout ``docs/architecture.md`` draws.  They read the source
(``ast``), import nothing, and name the offending file and line, so a change
that breaks the layout says exactly where.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"
COMPOSITION = {"server.cli", "server.web.app"}
"""The two modules that put the capabilities together; they may import anything."""
LONGEST_FUNCTION = 80
RULES_MAY_USE = {"pydantic", "broker.timeutil.HALL_TZ"}
"""Besides the standard library: the policy is a validated pydantic model (data, no I/O),
and hall time is the protocol's one time zone.  Nothing that does I/O."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SERVER.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(SERVER.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, functions' lazy imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _capability(module: str) -> str | None:
    """``server.ratings.api`` → ``ratings``; the shared top-level modules (db, sheet_style, …) have none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_layout_a_capability_never_reads_another_capabilitys_store():
    modules = _modules()
    offences = []
    for module, path in modules.items():
        if module in COMPOSITION:
            continue
        mine = _capability(module) or module
        for line, imported in _imports(path):
            if imported.startswith("server.") and imported.split(".")[-1] == "store" and imported in modules:
                if _capability(imported) != mine:
                    offences.append(f"{path.relative_to(SERVER.parent)}:{line} imports {imported}")
    assert not offences, "talk to another capability through its service:\n" + "\n".join(offences)


def _allowed(imported: str) -> bool:
    return any(imported == name or imported.startswith(name + ".") for name in RULES_MAY_USE) or imported == "broker.timeutil"


def test_layout_the_rules_core_imports_only_the_standard_library_itself_and_its_data_types():
    offences = []
    for module, path in _modules().items():
        if not module.startswith("server.rules"):
            continue
        for line, imported in _imports(path):
            top = imported.split(".")[0]
            if top in sys.stdlib_module_names or imported.startswith("server.rules") or _allowed(imported):
                continue
            offences.append(f"{path.relative_to(SERVER.parent)}:{line} imports {imported}")
    assert not offences, "server/rules/ is pure (no I/O; the standard library, pydantic and hall time only):\n" + "\n".join(offences)


def test_layout_server_modules_import_no_circle():
    modules = _modules()
    graph = {
        m: {i for _, i in _imports(p) if i in modules and i != m and not m.startswith(i + ".")}
        for m, p in modules.items()
    }
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not circles, "import circles:\n" + "\n".join(" → ".join(c) for c in circles)


def test_layout_no_function_in_server_runs_past_80_lines():
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(SERVER.parent)}:{node.lineno} {node.name} is {length} lines")
    assert not long, f"split functions longer than {LONGEST_FUNCTION} lines:\n" + "\n".join(long)


def test_layout_server_lists_capabilities_not_forty_modules():
    flat = sorted(p.name for p in SERVER.glob("*.py"))
    assert len(flat) <= 5, f"server/ should list capabilities; loose modules: {flat}"
