"""The static scan behind the class report's "suspicious code" flags (eep590_utils/grading/scan.py).

It must point a TA at code that tampers with the checks (reassigning library functions, rebinding
``check_close`` or builtins), reads the caller's frame (a hidden test's expected values), reads files
outside the submission, runs processes or opens sockets; and it must stay quiet on ordinary student
code, or TAs learn to ignore it.
"""
import copy
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from sample_class import HOSTILE_CROSS_CORR, solve

from eep590_utils.grading.scan import scan_notebook, scan_source

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import REPO  # noqa: E402


def reasons(source):
    return [reason for reason, _, _ in scan_source(source)]


def assert_flagged(source, *words):
    """``source`` gets at least one flag, and some flag's reason contains every word in ``words``."""
    found = reasons(source)
    assert found, f"not flagged: {source!r}"
    assert any(all(w in r for w in words) for r in found), f"{source!r}: flags {found} do not mention {words}"


# ------------------------------------------------------------------------------------------------------------
# What must be flagged


@pytest.mark.parametrize("source, words", [
    ("import numpy as np\nnp.allclose = lambda *a, **k: True", ("np.allclose", "reassigns")),
    ("np.testing.assert_allclose = print", ("np.testing.assert_allclose",)),
    ("torch.allclose = lambda *a, **k: True", ("torch.allclose",)),
    ("import eep590_utils\neep590_utils.check_close = lambda *a, **k: None", ("eep590_utils.check_close",)),
    ("eep590_utils.checks.check_close = lambda *a, **k: None", ("eep590_utils.checks.check_close",)),
    ("np.allclose, np.isclose = (lambda *a: True), (lambda *a: True)", ("np.isclose",)),
    ("np.random.seed += 1", ("np.random.seed",)),
    ("setattr(np, 'allclose', lambda *a, **k: True)", ("setattr", "np")),
    ("setattr(torch, 'allclose', lambda *a, **k: True)", ("setattr", "torch")),
    ("setattr(eep590_utils, 'check_close', lambda *a, **k: None)", ("setattr", "eep590_utils")),
])
def test_reassigning_library_functions_is_flagged(source, words):
    assert_flagged(source, *words)


@pytest.mark.parametrize("source, name", [
    ("check_close = lambda *args, **kwargs: None", "check_close"),
    ("def check_close(actual, expected, **kwargs):\n    return None", "check_close"),
    ("async def check_close(*args):\n    pass", "check_close"),
    ("check_shape = check_type = None", "check_type"),
    ("print = lambda *args: None", "print"),
    ("def isinstance(obj, cls):\n    return True", "isinstance"),
    ("len = lambda x: 0", "len"),
    ("abs, a = (lambda x: 0), 1", "abs"),
    ("import builtins\nbuiltins.abs = lambda x: 0", "builtins.abs"),
])
def test_rebinding_check_functions_and_builtins_is_flagged(source, name):
    assert_flagged(source, name)


@pytest.mark.parametrize("source, words", [
    ("import sys\nexpected = sys._getframe(1).f_locals['expected']", ("_getframe",)),
    ("import inspect\nframes = inspect.stack()", ("inspect.stack",)),
    ("def f(frame):\n    return frame.f_back.f_locals", ("f_back",)),
    ("caller = inspect.currentframe().f_back", ("currentframe",)),
    ("g = some_frame.f_globals", ("f_globals",)),
])
def test_frame_inspection_is_flagged(source, words):
    assert_flagged(source, *words)


@pytest.mark.parametrize("source", [
    "data = open('/work/main/source/hw1/cross_correlation.ipynb').read()",
    "with open('../../../gradebook.db', 'rb') as f:\n    blob = f.read()",
    "import glob\npaths = glob.glob('../../source/*/*.ipynb')",
    "paths = glob.glob('/work/**/source/*.ipynb', recursive=True)",
    "from pathlib import Path\ntext = Path('../../source/hw1/warmup.ipynb').read_text()",
    "from pathlib import Path\np = Path('/etc/passwd')",
    "import os\nnames = os.listdir('..')",
    "names = os.listdir('/work/main/source')",
    "for entry in os.scandir('../..'):\n    print(entry)",
    "for root, dirs, files in os.walk('/'):\n    pass",
    "secret = open('~/.ssh/id_rsa').read()",
    "import numpy as np\nw = np.load('../../solutions/weights.npy')",
])
def test_reading_outside_the_submission_is_flagged(source):
    assert_flagged(source, "outside the submission")


@pytest.mark.parametrize("source, words", [
    ("import socket", ("imports socket",)),
    ("from socket import create_connection", ("socket",)),
    ("import subprocess\nsubprocess.run(['ls', '/'])", ("imports subprocess",)),
    ("from subprocess import check_output", ("subprocess",)),
    ("import urllib.request", ("urllib",)),
    ("import requests", ("requests",)),
    ("import ctypes", ("ctypes",)),
    ("import inspect", ("inspect",)),
    ("import os\nos.system('cat /etc/passwd')", ("system", "shell")),
    ("out = os.popen('ls').read()", ("popen",)),
    ("p = sp.Popen(['sleep', '100'])", ("Popen",)),
    ("s = socket.socket()", ("socket",)),
    ("conn = socket.create_connection(('example.com', 80))", ("create_connection",)),
    ("sys.settrace(tracer)", ("settrace",)),
    ("objects = gc.get_objects()", ("get_objects",)),
])
def test_processes_sockets_and_risky_imports_are_flagged(source, words):
    assert_flagged(source, *words)


@pytest.mark.parametrize("source, name", [
    ("exec('import os')", "exec"),
    ("value = eval('1 + 1')", "eval"),
    ("os_module = __import__('os')", "__import__"),
    ("code = compile('x = 1', '<s>', 'exec')", "compile"),
])
def test_exec_and_eval_are_flagged(source, name):
    assert_flagged(source, f"calls {name}()")


def test_builtins_module_object_is_flagged():
    assert_flagged("__builtins__.len = lambda x: 0", "__builtins__")


@pytest.mark.parametrize("line", ["!ls /work/main/source", "%run ../../source/hw1/warmup.ipynb",
                                  "%%bash", "  !curl http://example.com"])
def test_ipython_magics_and_shell_lines_are_flagged_and_the_rest_still_parsed(line):
    source = f"x = 1\n{line}\nnp.allclose = lambda *a: True\n"
    flags = scan_source(source)
    kinds = {reason: number for reason, number, _ in flags}
    assert kinds.get("runs an IPython magic or shell command") == 2, flags
    # the Python around the magic is still scanned, with the cell's own line numbers
    assert any("np.allclose" in r and n == 3 for r, n in kinds.items()), flags


def test_flags_carry_line_numbers_and_the_offending_code():
    source = "import numpy as np\n\n\ndef f(x):\n    frame = sys._getframe(1)\n    return x\n"
    flags = scan_source(source)
    assert len(flags) == 1, flags
    reason, line, code = flags[0]
    assert line == 5
    assert code == "frame = sys._getframe(1)"
    assert "_getframe" in reason


def test_the_hostile_sample_submission_is_flagged_for_each_attack():
    text = " | ".join(reasons(HOSTILE_CROSS_CORR))
    for expected in ("imports socket", "create_connection", "reassigns eep590_utils.check_close", "rebinds check_close"):
        assert expected in text, f"hostile sample: {expected!r} not among the flags: {text}"


# ------------------------------------------------------------------------------------------------------------
# What must not be flagged

BATCHNORM = '''
import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    """
    Inputs:
    - x: Data of shape (N, D)
    - gamma: Scale parameter of shape (D,)
    - beta: Shift parameter of shape (D,)
    Returns a tuple of:
    - out: of shape (N, D)
    - cache: A tuple of values needed in the backward pass
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        std = np.sqrt(var + eps)
        x_hat = (x - mu) / std
        out = gamma * x_hat + beta
        cache = (x_hat, gamma, std)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward_alt(dout, cache):
    x_hat, gamma, std = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * x_hat, axis=0)
    dbeta = dout.sum(axis=0)
    dx_hat = dout * gamma
    dx = (N * dx_hat - dx_hat.sum(axis=0) - x_hat * np.sum(dx_hat * x_hat, axis=0)) / (N * std)
    return dx, dgamma, dbeta
'''

TORCH_MODEL = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10, p=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(p)
        self.fc = nn.Linear(32 * 16 * 16, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))


def stack_examples(images, labels):
    batch = torch.stack([torch.as_tensor(im) for im in images])
    targets = np.stack(labels)
    pairs = torch.stack((batch.mean(), batch.std()))
    return batch, torch.from_numpy(targets), pairs


model = SmallCNN()
model.train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
self_check = check_close(model(torch.zeros(2, 3, 32, 32)).shape[1], 10, name="classes")
'''

RELATIVE_FILES = '''
import glob
import os
from pathlib import Path

import numpy as np
import torch

with open("model.pt", "rb") as handle:
    blob = handle.read()
state = torch.load("model.pt", map_location="cpu")
weights = np.load("weights.npz")
table = np.loadtxt("results/table.txt")
images = sorted(glob.glob("images/*.png"))
names = os.listdir(".")
here = Path("checkpoints") / "mnist_model.pt"
notes = Path("notes.txt").read_text()
torch.save(state, "cifar10_model.pt")
save_checkpoint(model, "mnist_model.pt")
'''


@pytest.mark.parametrize("source", [BATCHNORM, TORCH_MODEL, RELATIVE_FILES], ids=["batchnorm", "torch_model", "relative_files"])
def test_ordinary_student_code_is_not_flagged(source):
    assert scan_source(source) == []


@pytest.mark.parametrize("source", [
    "def f(:\n    return 1",
    "return out cache  # a typo",
    "for i in range(3)\n    print(i)",
    "x = (1, 2",
])
def test_syntax_errors_are_not_flagged(source):
    assert scan_source(source) == []


def test_an_attribute_named_like_a_protected_function_on_an_own_object_is_not_flagged():
    source = "self.check = None\nmodel.fc = nn.Linear(10, 2)\nresults.len = 3\nnet.print = False\n"
    assert scan_source(source) == []


BUG_ATTRIBUTE_CALLS = ("scan.py _Scanner.visit_Call: `name` is the attribute name for `obj.method()` calls, so "
                       "`model.eval()`, `re.compile()`, `torch.compile()` are taken for the builtins eval()/compile() "
                       "(hw3/compression's own solution is flagged). Flag exec/eval/compile/__import__ only when "
                       "node.func is an ast.Name (or builtins.<name>)")


@pytest.mark.parametrize("source", [
    "model.eval()\nwith torch.no_grad():\n    logits = model(x)",
    "net = copy.deepcopy(net).cpu().eval()",
    "import re\npattern = re.compile(r'\\d+')",
    "fast = torch.compile(model)",
])
def test_methods_named_eval_or_compile_are_not_flagged(source):
    assert scan_source(source) == []


@pytest.mark.parametrize("source", ["t = np.trace(A)", "t = torch.trace(A)", "traced = torch.jit.trace(model, example)"])
def test_matrix_trace_and_jit_trace_are_not_flagged(source):
    assert scan_source(source) == []


def test_a_local_variable_named_like_an_eep590_function_is_not_flagged():
    source = ("def evaluate_model(model, loader):\n"
              "    correct = total = 0\n"
              "    for x, y in loader:\n"
              "        correct += (model(x).argmax(1) == y).sum().item()\n"
              "        total += len(y)\n"
              "    accuracy = correct / total\n"
              "    return accuracy\n")
    assert scan_source(source) == []


# ------------------------------------------------------------------------------------------------------------
# scan_notebook: only what the student wrote or changed


def _meta(grade_id, **kw):
    return {"nbgrader": {"schema_version": 3, "grade_id": grade_id, "grade": False, "solution": False,
                         "locked": False, **kw}}


def _release():
    return new_notebook(cells=[
        new_markdown_cell("# Part 1\n\n!this markdown is not code: %not a magic"),
        new_code_cell("import sys\n%matplotlib inline\nfrom eep590_utils import *", metadata=_meta("imports", locked=True)),
        new_code_cell("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()", metadata=_meta("f", solution=True)),
        new_code_cell("frame = sys._getframe(0)  # a given (locked) test cell may do anything",
                      metadata=_meta("f_test", grade=True, locked=True, points=1)),
        new_code_cell("import inspect  # given scratch cell, unchanged"),
        new_code_cell("# scratch space"),
    ])


def test_scan_notebook_reports_only_cells_the_student_wrote():
    release = _release()
    given = [cell.source for cell in release.cells]
    nb = copy.deepcopy(release)
    nb.cells[2].source = "def f(x):\n    global check_close\n    check_close = lambda *a, **k: None\n    return x"  # the student's solution
    nb.cells[5].source = "import subprocess"                                                 # the student's scratch cell
    nb.cells.append(new_code_cell("\nnp.allclose = lambda *a: True\n"))                   # a new cell
    # a locked, non-solution cell the student edited: restored from the gradebook before it runs, so not scanned
    nb.cells[3].source = "import socket\nsys._getframe(1)"
    found = scan_notebook(nb, given)
    by_cell = {}
    for entry in found:
        by_cell.setdefault(entry["cell"], []).append(entry)
    assert sorted(by_cell) == [2, 5, 6], found
    assert by_cell[2][0]["grade_id"] == "f" and "check_close" in by_cell[2][0]["reason"]
    assert by_cell[2][0]["line"] == 3 and by_cell[2][0]["code"] == "check_close = lambda *a, **k: None"
    assert by_cell[5][0]["grade_id"] is None and "subprocess" in by_cell[5][0]["reason"]
    assert "np.allclose" in by_cell[6][0]["reason"]


def test_scan_notebook_skips_given_cells_even_with_whitespace_changes():
    release = _release()
    nb = copy.deepcopy(release)
    nb.cells[4].source = "\n" + nb.cells[4].source + "\n\n"
    assert scan_notebook(nb, [cell.source for cell in release.cells]) == []
    # without the release every unlocked code cell is the student's: the inspect import is flagged
    found = scan_notebook(nb)
    assert [e["cell"] for e in found] == [4], found


def test_scan_notebook_scans_an_unlocked_graded_solution_cell():
    nb = new_notebook(cells=[new_code_cell("eep590_utils.check_close = None",
                                           metadata=_meta("answer", solution=True, grade=True, locked=False, points=2))])
    found = scan_notebook(nb, ["# YOUR CODE HERE\nraise NotImplementedError()"])
    assert [e["grade_id"] for e in found] == ["answer"]


def test_reference_solutions_of_every_assignment_are_not_flagged():
    """A student who submits exactly the instructor's solutions gets no "suspicious code" flag."""
    flagged = {}
    for source_path in sorted((REPO / "source").glob("*/*.ipynb")):
        release_path = REPO / "release" / source_path.parent.name / source_path.name
        source_nb = nbformat.read(source_path, as_version=4)
        release_nb = nbformat.read(release_path, as_version=4)
        found = scan_notebook(solve(release_nb, source_nb), [cell.source for cell in release_nb.cells])
        if found:
            flagged[f"{source_path.parent.name}/{source_path.name}"] = found
    assert flagged == {}
