"""Static scan of the code a student wrote, for the class report's "suspicious code" flags.

Nothing here changes a grade: it points a TA at code worth reading, e.g. a solution that
reassigns ``np.allclose`` or ``check_close``, inspects its caller's frame (to read a hidden
test's expected values), reads files outside its submission, or opens sockets.
"""
import ast

import eep590_utils

from . import cells

WATCHED_MODULES = {"np", "numpy", "torch", "F", "nn", "eep590_utils", "math", "builtins", "random", "os", "sys"}
PROTECTED_NAMES = set(eep590_utils.__all__) | {"print", "open", "isinstance", "len", "float", "int", "abs", "round"}
FRAME_ATTRS = {"_getframe", "f_back", "f_locals", "f_globals", "currentframe", "getouterframes"}
INSPECT_ATTRS = {"stack", "trace", "getframeinfo", "getsource"}  # frame inspection only on the inspect module
RISKY_CALLS = {
    "system": "runs a shell command", "popen": "runs a shell command", "Popen": "runs a process",
    "run": None, "check_output": "runs a process", "socket": "opens a network socket",
    "urlopen": "opens a URL", "create_connection": "opens a network connection",
    "settrace": "installs a tracer", "setprofile": "installs a profiler", "get_objects": "walks every live object",
}
RISKY_IMPORTS = {"socket", "subprocess", "ctypes", "urllib", "requests", "http", "gc", "inspect", "signal", "pty"}


def _snippet(source, node):
    line = source.splitlines()[node.lineno - 1] if node.lineno <= len(source.splitlines()) else ""
    return line.strip()[:100]


class _Scanner(ast.NodeVisitor):
    def __init__(self, source):
        self.source, self.flags = source, []
        self.depth, self.globals = 0, set()  # inside a function, a name is local unless declared global

    def flag(self, node, reason):
        self.flags.append((reason, node.lineno, _snippet(self.source, node)))

    def _check_target(self, target, node):
        if isinstance(target, ast.Attribute):
            base = target.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in WATCHED_MODULES:
                self.flag(node, f"reassigns {ast.unparse(target)} (a library function)")
        elif isinstance(target, ast.Name) and target.id in PROTECTED_NAMES and (not self.depth or target.id in self.globals):
            self.flag(node, f"rebinds {target.id} (a builtin or eep590_utils name the tests use)")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element, node)

    def visit_Assign(self, node):
        for target in node.targets:
            self._check_target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        if node.name in PROTECTED_NAMES and not self.depth:
            self.flag(node, f"redefines {node.name} (a builtin or eep590_utils name the tests use)")
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_Global(self, node):
        self.globals.update(node.names)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in RISKY_IMPORTS:
                self.flag(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if (node.module or "").split(".")[0] in RISKY_IMPORTS:
            self.flag(node, f"imports from {node.module}")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in FRAME_ATTRS or (node.attr in INSPECT_ATTRS and ast.unparse(node.value) == "inspect"):
            self.flag(node, f"uses {ast.unparse(node)} (inspects call frames)")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and ("../" in node.value or node.value.startswith(("/work", "/home", "/root", "/srv"))):
            self.flag(node, f"refers to {node.value[:60]!r} (outside the submission)")

    def visit_Call(self, node):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "setattr" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in WATCHED_MODULES:
            self.flag(node, f"setattr on {node.args[0].id} (a library module)")
        elif name in ("open", "listdir", "scandir", "walk", "glob", "read_text", "read_bytes", "Path", "load", "loadtxt"):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and (
                        arg.value.startswith(("/", "~")) or ".." in arg.value):
                    self.flag(node, f"reads {arg.value!r} (outside the submission)")
        elif name in ("exec", "eval", "__import__", "compile") and (
                isinstance(node.func, ast.Name) or ast.unparse(node.func.value) == "builtins"):
            self.flag(node, f"calls {name}()")
        elif RISKY_CALLS.get(name):
            self.flag(node, f"calls {name}() ({RISKY_CALLS[name]})")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in ("__builtins__", "__loader__"):
            self.flag(node, f"touches {node.id}")
        self.generic_visit(node)


def scan_source(source):
    """``[(reason, line, snippet)]`` for one cell's code; IPython magics and shell lines are flagged, not parsed."""
    lines = []
    flags = []
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("!", "%")):
            flags.append(("runs an IPython magic or shell command", number, stripped[:100]))
            lines.append("")
        else:
            lines.append(line)
    code = "\n".join(lines)
    try:
        tree = ast.parse(code)
    except SyntaxError:  # the cell fails when it runs, and its tests score 0: nothing to flag
        return flags
    scanner = _Scanner(code)
    scanner.visit(tree)
    return flags + scanner.flags


def scan_notebook(nb, given_sources=()):
    """``[{cell, grade_id, reason, line, code}]`` over the code cells a student wrote or changed
    (cells whose source is identical to one in ``given_sources`` — the release — are skipped)."""
    given = {s.strip() for s in given_sources}
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.source.strip() in given:
            continue
        if cells.is_locked(cell):
            continue  # locked cells are restored from the gradebook before they run
        for reason, line, code in scan_source(cell.source):
            found.append({"cell": index, "grade_id": cells.grade_id(cell), "reason": reason, "line": line, "code": code})
    return found
