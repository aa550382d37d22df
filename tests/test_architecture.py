"""The import structure the README's map describes: no cycle between modules or between packages, and the
edges that keep the layers apart (data never imports models; cores never import stages)."""

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "cosmos_exp"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> Dict[str, Set[str]]:
    """module -> cosmos_exp modules it imports anywhere in its body (function-level imports count too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cosmos_exp"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("cosmos_exp")]
            else:
                continue
            # `from cosmos_exp import rundir` imports rundir; the root package's own __init__ holds only the version
            graph[mod] |= {t for t in targets if t in modules and t not in (mod, "cosmos_exp")}
    return graph


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> Dict[str, Set[str]]:
    out: Dict[str, Set[str]] = {}
    for mod, deps in import_graph().items():
        out.setdefault(package_of(mod), set()).update(package_of(d) for d in deps if package_of(d) != package_of(mod))
    return out


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle as a path [a, b, ..., a], or [] when the graph is acyclic."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_no_import_cycle_between_modules():
    assert find_cycle(import_graph()) == []


def test_no_import_cycle_between_packages():
    assert find_cycle(package_graph()) == []


def test_layers_keep_apart():
    packages = package_graph()
    assert "models" not in packages["data"]  # data is preprocessing only; model building lives in models/
    for core in ("config", "rundir", "repro", "data", "models", "train", "infer", "evaluate", "sweep", "trajectory",
                 "study"):
        assert "stages" not in packages.get(core, set()), f"{core} imports a stage module"
    assert packages["rundir"] <= {"config"}  # the run-directory contract stands on nothing but the schema


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
