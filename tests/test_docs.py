"""The documentation and the layout keep their promises.

* Every "docs/physics.md §X" citation in code, catalogs, data and docs names a heading of docs/physics.md,
  and that page keeps the section numbers the code cites.
* Nothing in the repository points outside it (to a sibling checkout's notes).
* Imports follow the stages of the data flow (docs/architecture.md): errors/units < spec < physics <
  estimate < search < serving < calibrate/kernels < check < views < web < cli. A module never imports a
  later stage, not even inside a function; planner modules form no import cycle; no module is over 400
  lines.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHYSICS = ROOT / "docs" / "physics.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_MODULE_LINES = 400

# Folders and files whose text may cite docs/physics.md.
CITING_ROOTS = ["planner", "kernels", "model_specs", "hardware_profiles", "docs", "tests", "validation",
                "benchmarks", "examples", "README.md"]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".csv", ".toml", ".txt", ".json", ".cfg", ".ini", ".sh", ""}
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "build", "dist", "node_modules", ".pytest_cache",
             ".hypothesis", ".mypy_cache", ".ruff_cache"}

# The sections the code cites; docs/physics.md must keep every one of them with the same number.
REQUIRED_SECTIONS = (
    ["1", "1.1", "1.2", "1.3", "1.4", "1.5"]
    + ["2", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
    + ["3", "3.1", "3.2", "3.3", "3.4", "3.5"]
    + ["4"] + [f"4.{i}" for i in range(1, 9)]
    + ["5", "6", "7", "7.1", "7.2", "7.3", "7.4", "8", "9", "10", "11"]
)

# Stage of each top-level part of planner/; a module may import its own stage or an earlier one.
STAGES = {
    "planner": 0, "planner.errors": 0, "planner.units": 0,
    "planner.spec": 1,
    "planner.physics": 2,
    "planner.estimate": 3,
    "planner.search": 4,
    "planner.serving": 5,
    "planner.calibrate": 6, "planner.kernels": 6,
    "planner.check": 7,
    "planner.views": 8,
    "planner.web": 9,
    "planner.cli": 10, "planner.__main__": 10,
}
STAGE_ORDER = "errors/units < spec < physics < estimate < search < serving < calibrate/kernels < check < views < web < cli"


# --------------------------------------------------------------------------------------------------
# Reading the tree
# --------------------------------------------------------------------------------------------------


def _walk(path: Path):
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        return
    for child in sorted(path.iterdir()):
        if child.name in SKIP_DIRS or child.name.endswith(".egg-info"):
            continue
        yield from _walk(child)


def _text(path: Path) -> str | None:
    if path.suffix not in TEXT_SUFFIXES or path.stat().st_size > 5_000_000:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def _repo_text_files() -> list[Path]:
    """Every text file of the checkout (tracked or not), build outputs and caches left out."""
    return [p for p in _walk(ROOT) if _text(p) is not None]


@lru_cache(maxsize=1)
def physics_sections() -> frozenset[str]:
    """Section numbers of docs/physics.md: the first token of each markdown heading, e.g. '4.5' of
    '### 4.5 MoE' or '4' of '## 4. Decode time'."""
    out = set()
    for line in PHYSICS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{1,6}\s+(\d+(?:\.\d+)*)\.?(?:\s|$)", line)
        if m:
            out.add(m.group(1))
    return frozenset(out)


# "docs/physics.md §4.5", "§3.1/§3.2", "§1.3-1.5", "§2.5-§3", "sections 4.2, 4.3, 5", "docs/physics.md 4.8".
_NUM = r"§?\s*\d+(?:\.\d+)*"
_CITATION = re.compile(
    r"physics\.md(?P<refs>[ \t]*(?:§|sections?[ \t]+)?[ \t]*\d+(?:\.\d+)*"
    rf"(?:[ \t]*(?:,|/|-|–|and)[ \t]*{_NUM}(?![\d.]*\s*(?:GB|MB|GiB|MiB|tok|ms|us|%)))*)"
)


def cited_sections(text: str) -> list[tuple[int, str, str]]:
    """(line, section, the citation as written) for every numbered citation of physics.md in ``text``;
    a range 'a-b' contributes both ends."""
    out = []
    for m in _CITATION.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for num in re.findall(r"\d+(?:\.\d+)*", m.group("refs")):
            out.append((line, num.rstrip("."), m.group(0)))
    return out


def test_citation_parser_reads_every_form_the_code_uses():
    cases = {
        "see docs/physics.md §4.5.": ["4.5"],
        "(docs/physics.md §3.1/§3.3)": ["3.1", "3.3"],
        "(docs/physics.md §1.3-1.5)": ["1.3", "1.5"],
        "(docs/physics.md §2.5-§3).": ["2.5", "3"],
        "(docs/physics.md sections 4.2, 4.3, 5).": ["4.2", "4.3", "5"],
        "(docs/physics.md 4.8)": ["4.8"],
        "(docs/physics.md §7.1, item 6)": ["7.1"],
        "docs/physics.md §4.2, §5": ["4.2", "5"],
        "docs/physics.md, KV cache section": [],
        "docs/physics.md (the formulas)": [],
    }
    for text, expected in cases.items():
        assert [s for _, s, _ in cited_sections(text)] == expected, text


def test_physics_page_keeps_the_section_numbers_the_code_cites():
    missing = [s for s in REQUIRED_SECTIONS if s not in physics_sections()]
    assert not missing, f"docs/physics.md lacks headings for sections {missing}"


def test_every_physics_citation_names_a_section_of_the_physics_page():
    sections = physics_sections()
    roots = [ROOT / r for r in CITING_ROOTS]
    checked, broken = 0, []
    for root in roots:
        for path in _walk(root):
            text = _text(path)
            if text is None or "physics.md" not in text:
                continue
            for line, num, cited in cited_sections(text):
                checked += 1
                if num not in sections:
                    broken.append(f"{path.relative_to(ROOT)}:{line}: {cited!r} -> §{num}")
    assert checked > 50, f"only {checked} citations found: is the citation parser broken?"
    assert not broken, "citations of docs/physics.md without a matching heading:\n" + "\n".join(broken)


def test_cross_references_inside_the_physics_page_resolve():
    sections = physics_sections()
    text = PHYSICS.read_text(encoding="utf-8")
    broken = sorted({m.group(1) for m in re.finditer(r"§(\d+(?:\.\d+)*)", text)} - sections,
                    key=lambda s: [int(x) for x in s.rstrip(".").split(".")])
    assert not broken, f"docs/physics.md refers to missing sections {broken}"


def test_architecture_page_names_every_stage_and_every_subpackage():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    parts = ["spec/", "physics/", "estimate.py", "search/", "serving/", "calibrate/", "kernels/", "check/",
             "views/", "web/", "cli/", "data/", "planner.kernels", "planner/spec/paths.py", STAGE_ORDER]
    parts += [f"{p.name}/" for p in (ROOT / "planner").iterdir() if (p / "__init__.py").is_file()]
    missing = [p for p in parts if p not in text]
    assert not missing, f"docs/architecture.md does not mention {missing}"


def test_no_file_points_outside_the_repository():
    # Built from pieces so that this file does not match itself.
    needles = [".." + "/shared", "shared" + "/reference"]
    offenders = []
    for path in _repo_text_files():
        text = _text(path) or ""
        for i, line in enumerate(text.splitlines(), 1):
            if any(n in line for n in needles):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not offenders, "references to files outside the repository:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------------------


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for planner/ and kernels/ (shipped as planner.kernels)."""
    out: dict[str, Path] = {}
    for base, prefix in ((ROOT / "planner", "planner"), (ROOT / "kernels", "planner.kernels")):
        for path in _walk(base):
            if path.suffix != ".py":
                continue
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, imported planner module) for every import statement in the file, at any depth.

    ``from package import x`` counts as importing ``package.x`` when x is a submodule, else ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                source = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.append((node.lineno, sub if sub in modules else source))
    return [(line, mod) for line, mod in out if mod == "planner" or mod.startswith("planner.")]


def _stage(module: str) -> int | None:
    """The stage of a module: that of its longest listed prefix."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in STAGES:
            # planner itself is stage 0 only as the bare package; its subpackages need their own entry.
            if key == "planner" and len(parts) > 1:
                return None
            return STAGES[key]
    return None


@lru_cache(maxsize=1)
def import_graph() -> dict[str, list[tuple[int, str]]]:
    modules = _module_files()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_planner_module_belongs_to_a_stage():
    unknown = sorted(m for m in _module_files() if _stage(m) is None)
    assert not unknown, f"modules outside the stages {STAGE_ORDER}: {unknown}"


def test_import_parser_sees_imports_inside_functions_and_submodule_names(tmp_path):
    modules = {"planner.cli.app": tmp_path / "app.py", "planner.cli": tmp_path / "__init__.py",
               "planner.cli.plan": tmp_path / "plan.py", "planner.views": tmp_path / "v" / "__init__.py"}
    (tmp_path / "app.py").write_text(
        "from planner.cli import plan, EXIT_OK\n"
        "def f():\n    from planner.views import text\n    import planner.estimate\n"
        "from . import plan as p\n",
        encoding="utf-8",
    )
    found = _imports("planner.cli.app", tmp_path / "app.py", modules)
    assert sorted(found) == [(1, "planner.cli"), (1, "planner.cli.plan"), (3, "planner.views"),
                             (4, "planner.estimate"), (5, "planner.cli.plan")]


def test_no_module_imports_a_later_stage():
    modules = _module_files()
    violations = []
    for name, imports in import_graph().items():
        own = _stage(name)
        for line, target in imports:
            theirs = _stage(target)
            if own is not None and theirs is not None and theirs > own:
                violations.append(f"{modules[name].relative_to(ROOT)}:{line}: {name} imports {target}")
    assert not violations, f"imports against the stage order ({STAGE_ORDER}):\n" + "\n".join(sorted(violations))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_cycle_finder_finds_a_cycle_and_only_that():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_planner_modules_form_no_import_cycle():
    graph = {name: {t for _, t in imports if t != name} for name, imports in import_graph().items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_is_longer_than_400_lines():
    long = []
    for name, path in sorted(_module_files().items()):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


@pytest.mark.parametrize("module", ["planner.estimate", "planner.physics.latency", "planner.cli.app"])
def test_import_graph_sees_known_edges(module):
    # Guards against a parser that silently finds nothing.
    assert import_graph()[module], module
