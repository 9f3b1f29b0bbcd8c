"""The package's shape: its import graph (read from the source with ast, every import counted:
at module level, inside functions, and under TYPE_CHECKING) has no cycle and no import from a
lower layer to a higher one (cli > eval > pipeline > registry > index > models > audio,
structure > shared base modules) and no circle between packages, and the light entry points load no backend: importing the registry and printing
`voicerag --help` import no backend module and no torch (checked in a fresh interpreter)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from voicerag_cli.backends import BACKENDS

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "voicerag_cli"

# Layer of each subpackage or top-level module; anything not named is a shared base module
# (errors, paths, config, config_schema, backends, languages, ...), the lowest layer. A module may
# import its own layer or a lower one; packages on one layer must still not import each other in
# a circle (test_packages_import_each_other_in_no_circle). Every subpackage is named here.
LAYERS = {
    "__main__": 7,
    "cli": 7,
    "eval": 6,  # runs the pipeline over data sets
    "pipeline": 5,  # orchestration: questions, answers, index builds, spoken passages
    "registry": 4,  # constructs the backends the table names
    "index": 3,  # stores what models embed
    "models": 2,
    "audio": 1,
    "structure": 1,
    "markup": 1,
}


def module_files() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, package: set[str], me: str) -> set[str]:
    """The package modules `path` imports anywhere in its source ("from a.b import c" counts a.b
    and, when c is a module, a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{me}: relative import (the project imports absolutely)"
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name in package and name != me}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    package = set(files)
    return {module: imports_of(path, package, module) for module, path in files.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_the_graph_is_read_from_the_real_package() -> None:
    graph = import_graph()
    # a sample of edges the code is known to have: the reader must see each kind of import
    assert "voicerag_cli.pipeline.ask" in graph["voicerag_cli.pipeline.build"]  # module level
    assert "voicerag_cli.languages" in graph["voicerag_cli.pipeline.build"]  # inside a function
    assert "voicerag_cli.registry" in graph["voicerag_cli.pipeline.build"]  # under TYPE_CHECKING
    assert len(graph) > 80


def test_cycles_are_found_when_there_are_some() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycles() -> None:
    assert cycles(import_graph()) == []


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_subpackage_has_a_layer() -> None:
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages - set(LAYERS) == set()


def test_packages_import_each_other_in_no_circle() -> None:
    packages: dict[str, set[str]] = {}
    for source, targets in import_graph().items():
        packages.setdefault(package_of(source), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(source)
        )
    assert cycles(packages) == []


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if layer(target) > layer(source)
    )
    assert upward == []


def test_models_index_audio_never_import_cli_or_pipeline() -> None:
    graph = import_graph()
    lower = [m for m in graph if m.split(".")[1:2] and m.split(".")[1] in {"models", "index", "audio"}]
    assert len(lower) > 40
    for module in lower:
        higher = {t for t in graph[module] if t.split(".")[1] in {"cli", "pipeline", "eval"}}
        assert not higher, f"{module} imports {sorted(higher)}"


PROBE = """
import json, sys
what = sys.argv[1]
if what == "registry":
    from voicerag_cli.registry import Registry, find_spec, known_backends
    [find_spec(role, name) for role, names in known_backends().items() for name in names]
else:
    import voicerag_cli.cli.app as app
    try:
        app.main(["--help"])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def backend_modules() -> set[str]:
    """Every module the backend table names for a factory or a weights probe."""
    return {target.partition(":")[0] for spec in BACKENDS for target in (spec.factory, spec.weights)}


def loaded_by(what: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, what], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_registry_imports_no_backend() -> None:
    loaded = loaded_by("registry")
    assert "voicerag_cli.registry" in loaded
    assert not loaded & backend_modules()
    assert "torch" not in loaded and "numpy" not in loaded


def test_help_imports_no_backend_and_no_torch() -> None:
    loaded = loaded_by("help")
    assert "voicerag_cli.cli.app" in loaded
    assert not loaded & backend_modules()
    assert not {m for m in loaded if m.startswith("voicerag_cli.models.")}
    assert "torch" not in loaded


def test_structure_is_a_shared_low_layer() -> None:
    """`voicerag_cli.structure` (documents read as structure) sits below index, models and
    pipeline: of the package it may import only errors, sentences and itself."""
    graph = import_graph()
    modules = [m for m in graph if m == "voicerag_cli.structure" or m.startswith("voicerag_cli.structure.")]
    assert len(modules) >= 7
    allowed = {"voicerag_cli.errors", "voicerag_cli.sentences"}
    for module in modules:
        outside = {t for t in graph[module] if not t.startswith("voicerag_cli.structure")} - allowed
        assert not outside, f"{module} imports {sorted(outside)}"


def test_models_do_not_reach_up_into_the_index() -> None:
    """The index stores what models embed (`models.base.EmbeddingSpace`, its metric included);
    no model module reads the index's code."""
    reaching = {
        module: sorted(target for target in targets if target.startswith("voicerag_cli.index"))
        for module, targets in import_graph().items()
        if module.startswith("voicerag_cli.models")
    }
    assert {module: targets for module, targets in reaching.items() if targets} == {}


def test_backend_names_live_with_their_backends() -> None:
    """A backend's name is a string only in its table row (backends.py), the built-in profiles
    beside it (profiles.py) and the backend's own code (models/); anywhere else a decision about
    one backend belongs in its row (a field or a hook) instead."""
    names = {spec.name for spec in BACKENDS} - {"none"}
    own = {"voicerag_cli.backends", "voicerag_cli.profiles"}
    naming = sorted(
        f"{module}: {node.value!r}"
        for module, path in module_files().items()
        if module not in own and package_of(module) not in {"models", "training"}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    )
    assert naming == []
