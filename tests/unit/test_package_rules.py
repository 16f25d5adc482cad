"""The import rules between the pool's packages (docs/architecture.md).

Read statically from the source, so a rule is checked on every module,
including ones no other test imports, and on imports made inside functions
(a lazy import is still a dependency):

* no import cycle inside any package;
* ``orionx_common`` imports none of the pool's other packages;
* ``orionx_nova`` never imports ``orionx_agent``; ``orionx_agent`` imports
  only the guest-facing ``orionx_nova.virt`` helpers (guest XML, pool API);
* ``orionx_nova.scheduler`` is strictly below ``orionx_nova.objects``.

And dynamically, in a fresh interpreter: a host agent loads neither the
controller's database, objects, scheduler nor SQLAlchemy.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("orionx_common", "orionx_nova", "orionx_agent", "guest_runtime")


def _module_name(path, root=REPO):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield _module_name(path), path


def _imported_names(module, path, known):
    """Modules of the pool that ``module`` imports, by full name."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = "%s.%s" % (base, alias.name)
                # "from pkg import sub" names a module; "from mod import f" does not.
                yield candidate if candidate in known else base


def import_graph(sources=None):
    """{module: set of the pool's modules it imports}."""
    sources = dict(sources if sources is not None else _sources())
    known = set(sources)
    graph = {}
    for module, path in sources.items():
        targets = set()
        for name in _imported_names(module, path, known):
            # "import a.b.c" depends on the deepest module of ours it names.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _edges(graph, source_prefix, target_prefix):
    return sorted("%s -> %s" % (source, target)
                  for source, targets in graph.items() if _within(source, source_prefix)
                  for target in targets if _within(target, target_prefix))


def _within(module, prefix):
    return module == prefix or module.startswith(prefix + ".")


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_no_import_cycle(graph):
    assert find_cycles(graph) == []


def test_orionx_common_imports_no_other_package_of_the_pool(graph):
    for other in ("orionx_nova", "orionx_agent", "guest_runtime"):
        assert _edges(graph, "orionx_common", other) == []


def test_the_controller_side_never_imports_the_agent(graph):
    assert _edges(graph, "orionx_nova", "orionx_agent") == []


def test_the_agent_imports_only_the_guest_facing_virt_helpers(graph):
    allowed = {"orionx_nova.virt.guest_xml", "orionx_nova.virt.pool_api"}
    edges = _edges(graph, "orionx_agent", "orionx_nova")
    # The all-in-one process is both sides by design: it starts the controller.
    edges = [edge for edge in edges if not edge.startswith(("orionx_agent.allinone ",
                                                            "orionx_agent.demo "))]
    assert [edge for edge in edges if edge.split(" -> ")[1] not in allowed] == []


def test_the_scheduler_is_below_the_objects(graph):
    assert _edges(graph, "orionx_nova.scheduler", "orionx_nova.objects") == []


def test_the_rules_can_fail(tmp_path):
    """The checks above are not vacuous: a planted cycle and a planted
    upward import are both found."""
    package = tmp_path / "orionx_nova"
    (package / "scheduler").mkdir(parents=True)
    (package / "objects").mkdir()
    for init in (package, package / "scheduler", package / "objects"):
        (init / "__init__.py").write_text("")
    (package / "objects" / "gpus.py").write_text("from orionx_nova.scheduler import fit\n")
    (package / "scheduler" / "fit.py").write_text(
        "def f():\n    from orionx_nova.objects import gpus\n")
    sources = {_module_name(path, tmp_path): path for path in package.rglob("*.py")}
    planted = import_graph(sources)
    assert find_cycles(planted) == [["orionx_nova.objects.gpus", "orionx_nova.scheduler.fit"]]
    assert _edges(planted, "orionx_nova.scheduler", "orionx_nova.objects") == [
        "orionx_nova.scheduler.fit -> orionx_nova.objects.gpus"]


AGENT_ENTRY_POINTS = ["orionx_agent.agent.service", "orionx_agent.cmd.agent",
                      "orionx_agent.cmd.gpu_server"]
CONTROLLER_ONLY = ("orionx_nova.db", "orionx_nova.objects", "orionx_nova.scheduler",
                   "orionx_nova.conf", "orionx_nova.controller", "sqlalchemy", "alembic")


@pytest.mark.parametrize("module", AGENT_ENTRY_POINTS)
def test_a_host_agent_loads_nothing_of_the_controller(module):
    code = "import sys, %s\nprint(' '.join(sorted(sys.modules)))" % module
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert module in loaded
    assert [name for name in loaded if name.startswith(CONTROLLER_ONLY)] == []
