"""The CLI and the admin center import one way: no module of cli/ or web/ imports another (or
its package) back -- neither at the top nor hidden inside a function. Read from the source
(ast); nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import countersign

ROOT = Path(countersign.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str) -> set[str]:
    """The modules of `package` that the file imports, anywhere in it (functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                submodule = (ROOT.parent / candidate.replace(".", "/")).with_suffix(".py")
                found.add(candidate if submodule.exists() else node.module)
    return {name for name in found if name == package or name.startswith(package + ".")}


def _graph(package: str, skip_init: bool = True) -> dict[str, set[str]]:
    directory = ROOT.parent / package.replace(".", "/")
    graph: dict[str, set[str]] = {}
    for path in sorted(directory.glob("*.py")):
        if skip_init and path.name == "__init__.py":
            continue  # the package assembles its modules; what matters is that none imports it
        name = _module_name(path)
        graph[name] = _imports(path, package) - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done or name not in graph:
            return None
        visiting.append(name)
        for target in sorted(graph[name]):
            found = visit(target)
            if found:
                return found
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def test_cli_modules_import_one_way() -> None:
    graph = _graph("countersign.cli")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    for name, targets in graph.items():
        assert "countersign.cli" not in targets, f"{name} imports the package that mounts it"
    assert graph["countersign.cli.output"] == set()
    assert graph["countersign.cli.client"] == {"countersign.cli.output"}
    assert graph["countersign.cli.operator"] == {"countersign.cli.output"}


def test_the_admin_center_modules_import_one_way() -> None:
    graph = _graph("countersign.web")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert "countersign.web.core" not in graph["countersign.web.engine"]
    assert graph["countersign.web.session"] == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_domain_imports_one_way_and_nothing_but_itself() -> None:
    """domain/ is pure: no module of it imports services, store, api or web, and none of its
    modules import each other in a circle (TYPE_CHECKING imports count)."""
    graph = _graph("countersign.domain")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    for path in sorted((ROOT / "domain").glob("*.py")):
        outside = _imports(path, "countersign") - {"countersign"}
        assert all(name.startswith("countersign.domain") for name in outside), path.name


def test_the_services_import_one_way() -> None:
    graph = _graph("countersign.services")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
