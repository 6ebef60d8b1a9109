"""No import cycles among robo's modules, counting every import a module can make.

`lint-imports` (CI, contracts in pyproject.toml) checks the layers; this test
checks what layers alone let through: two modules of one layer, or of one
package, that import each other. Every import statement counts, wherever it
is: at the top, inside a function (a deferred import is still a dependency) or
under ``TYPE_CHECKING``. The Alembic migrations are scripts, not modules.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import robo

ROBO = Path(robo.__file__).parent
IGNORED = ("storage/migrations",)  # relative to the package folder

Edge = tuple[str, str]


def module_files(package: Path, ignored: tuple[str, ...] = IGNORED) -> dict[str, Path]:
    """Module name -> file, for every module of the package rooted at ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if any(relative.is_relative_to(folder) for folder in ignored):
            continue
        parts = [package.name, *relative.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """Names a statement imports: modules (``import a.b``, ``from a import b`` when a.b is a
    module) or the module a name comes from (``from a.b import name``)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:  # relative: from the current package, up level - 1 packages
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    yield source
    for alias in node.names:
        yield f"{source}.{alias.name}"  # kept only if it is a module


def import_graph(package: Path, ignored: tuple[str, ...] = IGNORED) -> dict[Edge, str]:
    """(importer, imported) -> where ("file:line"), for imports between the package's modules."""
    modules = module_files(package, ignored)
    edges: dict[Edge, str] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = list(_imported(node, module, path.name == "__init__.py"))
            if isinstance(node, ast.ImportFrom):
                source, *members = names
                # `from a import b`: a.b if that is a module, else a (where the name lives)
                targets = [m for m in members if m in modules] or [source]
                if len(targets) < len(members) and source not in targets:
                    targets.append(source)  # `from a import b, name`: both
            else:
                targets = names
            for target in targets:
                while target and target not in modules:  # an ignored module: its package
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.setdefault((module, target), f"{path}:{node.lineno}")
    return edges


def _strongly_connected(nodes: set[str], edges: set[Edge]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the components with more than one module."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in sorted(edges):
        successors[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(successors[node]):
                work.append((node, child + 1))
                nxt = successors[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(components)


def _shortest_cycle(start: str, members: set[str], edges: set[Edge]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (BFS)."""
    successors: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        if a in members and b in members:
            successors.setdefault(a, []).append(b)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in successors.get(node, []):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is in a component but on no cycle")  # pragma: no cover


def knots(graph: dict[Edge, str]) -> list[list[str]]:
    """The groups of modules that import each other (directly or not), sorted."""
    edges = set(graph)
    return _strongly_connected({n for edge in edges for n in edge}, edges)


def find_cycles(package: Path, ignored: tuple[str, ...] = IGNORED) -> list[list[str]]:
    """One shortest cycle per knot of modules that import each other, each as a path
    ``[a, b, ..., a]`` starting from the knot's first module in sorted order."""
    graph = import_graph(package, ignored)
    return [_shortest_cycle(knot[0], set(knot), set(graph)) for knot in knots(graph)]


def describe(cycles: list[list[str]], graph: dict[Edge, str]) -> str:
    lines = []
    for cycle, knot in zip(cycles, knots(graph), strict=True):
        lines.append(" -> ".join(cycle))
        lines += [f"    {a} -> {b}  ({graph[a, b]})" for a, b in itertools.pairwise(cycle)]
        if len(knot) > len(cycle) - 1:
            lines.append(f"    (the knot also holds: {', '.join(sorted(set(knot) - set(cycle)))})")
    return "\n".join(lines)


def test_robo_has_no_import_cycles() -> None:
    cycles = find_cycles(ROBO)

    found = describe(cycles, import_graph(ROBO))
    print(found)
    assert cycles == [], f"import cycles (each line: importer -> imported (where)):\n{found}"


# --- the cycle finder itself ------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "pkg"


def test_imports_inside_functions_and_type_checking_blocks_count(tmp_path: Path) -> None:
    package = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from pkg import b\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
        },
    )

    assert find_cycles(package) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_from_a_package_import_a_module_is_an_import_of_that_module(tmp_path: Path) -> None:
    package = write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import leaf\n",  # the package needs sub.leaf...
            "pkg/sub/__init__.py": "",
            "pkg/sub/leaf.py": "X = 1\n",
            "pkg/other.py": "from pkg import sub\n",  # ... and other imports pkg.sub only
            "pkg/user.py": "from pkg.sub.leaf import X\nfrom pkg.sub import leaf, missing\n",
        },
    )

    graph = import_graph(package)

    assert set(graph) == {
        ("pkg", "pkg.sub.leaf"),
        ("pkg.other", "pkg.sub"),
        ("pkg.user", "pkg.sub.leaf"),
        ("pkg.user", "pkg.sub"),  # `missing` is a name in pkg.sub
    }
    assert graph["pkg", "pkg.sub.leaf"].endswith("pkg/__init__.py:1")
    assert find_cycles(package) == []


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    package = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from . import x\n",
            "pkg/sub/x.py": "from ..top import T\n",
            "pkg/top.py": "from .sub import x\n",
        },
    )

    assert set(import_graph(package)) == {
        ("pkg.sub", "pkg.sub.x"),
        ("pkg.sub.x", "pkg.top"),
        ("pkg.top", "pkg.sub.x"),
    }
    assert find_cycles(package) == [["pkg.sub.x", "pkg.top", "pkg.sub.x"]]


def test_a_longer_cycle_is_printed_in_full_and_migrations_are_ignored(tmp_path: Path) -> None:
    package = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "import pkg.c\n",
            "pkg/c.py": "import pkg.a\nimport os\n",
            "pkg/storage/__init__.py": "",
            "pkg/storage/migrations/env.py": "import pkg.storage\n",
            "pkg/storage/__main__.py": "import pkg.storage.migrations.env\n",
        },
    )

    cycles = find_cycles(package, ignored=("storage/migrations",))

    assert cycles == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert describe(cycles, import_graph(package)).splitlines()[0] == (
        "pkg.a -> pkg.b -> pkg.c -> pkg.a"
    )
    assert "pkg.storage.migrations.env" not in module_files(package)
