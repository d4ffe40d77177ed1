"""The grading package's layers (issue: one bottom layer, commands that never import each other).

- bottom: the course, cell vocabulary, records, settings, safe file copying, the gradebook read with SQL, flags, wire format;
- tools: the sandbox, the warm-kernel zygote, the code scan, judges and their kernel-side probe;
- commands: one phase or command each, importing only the two layers above;
- composers: the job a worker runs, autograde's three phases, the cluster, the CLI and the demo.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "eep590_utils" / "grading"
BOTTOM = {"course", "cells", "records", "settings", "files", "gradebook", "flags", "wire"}
TOOLS = {"sandbox", "scan", "judge", "probe", "zygote"}
COMMANDS = {"stage", "execute", "release", "collect", "feedback", "report", "export", "similarity"}
COMPOSERS = {"jobs", "autograde", "cluster", "cli", "demo"}
ALLOWED = {**{m: BOTTOM for m in BOTTOM}, **{m: BOTTOM | TOOLS for m in TOOLS | COMMANDS}}


def grading_imports(module, top_level_only=False):
    """The grading modules ``module`` imports (inside functions too, unless ``top_level_only``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level == 1 and not name:
                found.update(alias.name for alias in node.names)
            elif node.level == 1:
                found.add(name.split(".")[0])
            elif name.startswith("eep590_utils.grading."):
                found.add(name.split(".")[2])
            elif name == "eep590_utils.grading":
                found.update(alias.name for alias in node.names)
    return found - {module, "__init__"}


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == BOTTOM | TOOLS | COMMANDS | COMPOSERS, "place a new module in a layer (this file's docstring)"


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_module_imports_only_the_layers_below(module):
    wrong = grading_imports(module) - ALLOWED[module]
    assert not wrong, f"{module} imports {sorted(wrong)}: move what it needs into a lower layer"


def test_import_chains_are_short():
    def depth(module, seen=()):
        below = grading_imports(module, top_level_only=True) - set(seen)
        return 1 + max((depth(m, (*seen, module)) for m in below), default=0)

    depths = {m: depth(m) for m in BOTTOM | TOOLS | COMMANDS | COMPOSERS}
    assert max(depths[m] for m in BOTTOM | TOOLS | COMMANDS) <= 3, depths  # a command, its tools, the bottom
    assert max(depths.values()) <= 5, depths  # demo -> autograde -> jobs -> execute -> sandbox (was 7 deep)


def test_commands_start_without_nbgrader_or_torch():
    import subprocess
    import sys

    code = ("import sys; from eep590_utils.grading import cli; cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'nbgrader', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
