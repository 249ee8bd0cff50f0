"""The package's shape, read from its source: no import circle, nothing in the library reaching up
to the `api` facade, every module on docs/architecture.md's code map, and per-type knowledge kept
on the component types (no `kind == "…"` test outside components/)."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "symcost"
CODE_MAP = PACKAGE.parent / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def runtime_imports(path: Path) -> set[str]:
    """The symcost modules `path` imports, at the top or inside functions; an import under `if
    TYPE_CHECKING:` names a type for annotations and is no dependency at run time."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for stmt in node.body for n in ast.walk(stmt)}
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("symcost")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").startswith("symcost"):
                base = node.module
            else:
                continue
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    # the package root is imported before any of its modules anyway (`from .. import __version__`): no edge
    return {m for m in found if m in MODULES and m not in (module_name(path), "symcost")}


GRAPH = {name: runtime_imports(path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                on.discard(w)
                component.append(w)
            on.discard(v)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_finds_a_circle_and_ignores_type_only_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert "symcost.measure.reference" in GRAPH["symcost.measure.verify"]  # a relative import, resolved
    assert "symcost.components.build" not in GRAPH["symcost.components.base"]  # under TYPE_CHECKING only
    for line in ('if c.kind == "moe":', 'getattr(site.component, "kind", None) == "lm_head"',
                 'not kinds & {"attention", "mla"}', '"moe" not in kinds'):
        assert re.search(KIND_TEST, line), line
    assert not re.search(KIND_TEST, "if c.routes_tokens and c.kind_of_thing:")


def test_no_import_circle():
    assert cycles(GRAPH) == []


def test_only_the_package_root_and_the_command_line_import_the_facade():
    importers = {name for name, deps in GRAPH.items() if "symcost.api" in deps}
    assert importers <= {"symcost"} | {name for name in MODULES if name.startswith("symcost.cli")}, importers


def test_every_module_is_on_the_code_map():
    """docs/architecture.md names each module by its path (`measure/verify.py`), or in its folder's
    entry (`verify.py` under `measure/`); a component type is covered by `<kind>.py`."""
    from symcost.components import REGISTRY

    text = CODE_MAP.read_text()
    entries = re.split(r"\n  (?=\S)", text[text.index("symcost/\n"):text.index("```", text.index("symcost/\n"))])
    missing = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1:
            named = any(entry.startswith(rel.name + " ") for entry in entries)
        else:
            folder = next((e for e in entries if e.startswith(rel.parts[0] + "/")), "")
            named = rel.name in folder or (rel.parts[0] == "components" and rel.stem in REGISTRY)
        if not named:
            missing.append(str(rel))
    assert not missing, missing


def test_every_data_file_the_package_reads_ships_in_its_wheel():
    """pyproject.toml's package-data names each non-Python file under symcost/ (a catalog, an efficiency file, the
    page's assets): one left out is missing from an installed wheel though an editable install finds it."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    data = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    assert data and not [f for f in data if not any(fnmatch.fnmatch(f, g) for g in patterns["symcost"])]


# a component's kind compared with a type's name (`c.kind == "moe"`, `getattr(c, "kind", None) == …`), or
# the kinds of a spec matched against a set of names (`kinds & {"attention", …}`)
KIND_TEST = r"""\.kind\s*(==|!=|in)\s*["'(\[{]|"kind", None\)\s*(==|!=|in)|\bkinds\s*&\s*\{|["']\w+["']\s+(not\s+)?in\s+kinds\b"""
LIBRARY = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "components"]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_test_of_a_layer_kind_outside_its_component(path):
    """What the planner, memory or the measured route must know of a layer type is declared on its
    component class (as `decodes` and `reads_memory` are), not tested by name elsewhere."""
    hits = [f"{path.name}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(KIND_TEST, line)]
    assert not hits, hits


FLAG = re.compile(r"(^|[\s(`'\"])--[a-z]")
RAISERS = {"SpecError", "MissingExtra", "error", "_error", "require"}  # `doc.error(...)`, `c.error(...)` too


def error_texts(path: Path) -> list[tuple[int, str]]:
    """The literal text of every error the module builds: SpecError(...), a config's or a spec's
    .error(...), and require(...)'s `what`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in RAISERS:
                for arg in node.args:
                    for part in ast.walk(arg):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str):
                            out.append((node.lineno, part.value))
    return out


def test_the_flag_reader_sees_an_error_that_names_a_flag():
    assert FLAG.search("--set d_model: no such dim") and FLAG.search("give one with --set d_model=N")
    assert not FLAG.search("give one with `d_model=N`") and not FLAG.search("a 2-layer model")


@pytest.mark.parametrize("path", [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "cli"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_errors_name_parameters_not_flags(path):
    """An API user has no --set: library errors name the parameter (`seq_len=N`, param="dims"), and
    the command line's edge (cli/_options.flagged) says it as a flag."""
    hits = [f"{path.name}:{line}: {text}" for line, text in error_texts(path) if FLAG.search(text)]
    assert not hits, hits
