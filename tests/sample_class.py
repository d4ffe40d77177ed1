"""The bundled sample class for hw1 (``samples/hw1/<student>/*.ipynb``), built from the release and
the instructor's solutions, so that the demo and the tests exercise every path of the pipeline.

Students, and what each should get:

- ``perfect``: every solution filled in, written answers given: full marks on everything autograded; its
  written answers await a grader (pending, not 0).
- ``partial_conv``: true convolution instead of cross-correlation (flipped kernel) and a batchnorm
  with the unbiased variance: loses exactly those tests.
- ``partial_dropout``: dropout without the 1/(1-p) rescaling and two learning-rate curves swapped.
- ``blank``: the release as handed out: 0 on everything, written answers included (nothing for a TA).
- ``broken``: one corrupt notebook (truncated JSON), one with a syntax error in a solution, one missing.
- ``endless``: a ``dropout_backward`` that loops forever and ignores SIGINT; everything else right.
- ``hostile``: tries to read the solutions and the gradebook, to reach the network, replaces
  ``check_close`` with a function that always passes, and deletes and edits test cells; and, with wrong
  answers, tries what used to talk a test cell into passing when test cells ran in the student's kernel:
  silencing IPython's tracebacks, ``np.allclose``/``np.isclose``/``torch.allclose`` that always say yes,
  labels that are ``str`` subclasses equal to everything, an ``activation_name`` whose ``lower()`` lies.
  Test cells are decided by judges outside the kernel (:mod:`.judge`), so every attack fails: it scores
  exactly what its wrong answers are worth.

``python tests/sample_class.py`` rewrites ``samples/hw1`` (a test checks it is in sync).
"""
import copy
import shutil
import sys
from pathlib import Path

import nbformat

from eep590_utils.grading import cells

WRITTEN_ANSWER = "A sample answer written for the demo: the TA grades this cell by hand with the rubric."


def solution_sources(source_nb):
    """``{grade_id: source}`` of the solution cells with their solution regions unwrapped."""
    found = {}
    for cell in source_nb.cells:
        if cells.is_solution(cell) and cell.cell_type == "code":
            found[cells.grade_id(cell)] = cells.solution_body(cell.source)
    return found


def solve(release_nb, source_nb):
    """The release with every solution filled in and every written answer given."""
    nb = copy.deepcopy(release_nb)
    solutions = solution_sources(source_nb)
    for cell in nb.cells:
        grade_id = cells.grade_id(cell)
        if grade_id in solutions:
            cell.source = solutions[grade_id]
        elif cell.cell_type == "markdown" and cell.source.strip() == "YOUR ANSWER HERE":
            cell.source = WRITTEN_ANSWER
    return nb


def _cell(nb, grade_id):
    for cell in nb.cells:
        if cells.grade_id(cell) == grade_id:
            return cell
    raise KeyError(f"no cell {grade_id!r} in the notebook: the samples need updating for the new hw1")


def _append(nb, grade_id, code):
    cell = _cell(nb, grade_id)
    cell.source = cell.source.rstrip() + "\n\n" + code.strip() + "\n"


FLIPPED_KERNEL = """
_cross_corr_2d = cross_corr_2d


def cross_corr_2d(X, K):
    # "convolution" as in the signal-processing textbook: the kernel is flipped
    return _cross_corr_2d(X, torch.flip(K, dims=(0, 1)))
"""
UNBIASED_VARIANCE = """
_batchnorm_forward = batchnorm_forward


def batchnorm_forward(x, gamma, beta, bn_param):
    # normalises with the unbiased variance (divides by N - 1)
    if bn_param.get("mode", "train") != "train":
        return _batchnorm_forward(x, gamma, beta, bn_param)
    N = x.shape[0]
    mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    bn_param["running_mean"] = momentum * bn_param.get("running_mean", np.zeros_like(mu)) + (1 - momentum) * mu
    bn_param["running_var"] = momentum * bn_param.get("running_var", np.ones_like(var)) + (1 - momentum) * var
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, x_hat, mu, var, gamma, eps)
"""
UNSCALED_DROPOUT = """
_dropout_forward = dropout_forward


def dropout_forward(x, dropout_param):
    # forgets to rescale the kept activations by 1 / (1 - p)
    out, cache = _dropout_forward(x, dropout_param)
    if dropout_param.get("mode") == "train":
        out = out * (1 - dropout_param["p"])
    return out, cache
"""
SWAPPED_LABELS = """
lr_curve_labels = {**lr_curve_labels, "A": lr_curve_labels["B"], "B": lr_curve_labels["A"]}
"""
ENDLESS = """
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C (and nbgrader's interrupt) no longer stops this kernel


def dropout_backward(dout, cache):
    while True:  # a loop that never ends
        pass
"""
HOSTILE_CROSS_CORR = """
import glob
import json
import os
import socket

# 1. copy the instructor's solution or the gradebook from the course directory
for pattern in ("../../../source/hw1/*.ipynb", "../../../gradebook.db", "/work/**/source/hw1/*.ipynb"):
    for path in glob.glob(pattern, recursive=True):
        print("read", path, len(open(path, "rb").read()), "bytes")
# 2. phone home
try:
    socket.create_connection(("example.com", 80), timeout=3)
    print("network: reachable")
except OSError as error:
    print("network: unreachable")
# 3. make every check pass
import eep590_utils

eep590_utils.check_close = lambda *args, **kwargs: None
check_close = lambda *args, **kwargs: None


def cross_corr_2d(X, K):
    return None


# 4. silence failures and make every comparison say yes
get_ipython().showtraceback = lambda *args, **kwargs: None
np.allclose = torch.allclose = lambda *args, **kwargs: True
"""
HOSTILE_DROPOUT = """
# inverted dropout without the 1 / (1 - p) scale, and every comparison NumPy makes says yes
import builtins

np.allclose = lambda *args, **kwargs: True
np.isclose = lambda *args, **kwargs: np.True_
np.array_equal = lambda *args, **kwargs: True
builtins.abs = lambda x: 0 * x
"""
HOSTILE_WARMUP_LABELS = """
class _Label(str):  # equal to every label it is compared with
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


lr_curve_labels = {"A": _Label("low"), "B": _Label("optimal"), "C": _Label("high"), "D": _Label("very high")}
"""
HOSTILE_WARMUP_NAME = """
class _Name(str):  # shows one name, lowers to another
    def lower(self):
        return "elu"


activation_name = _Name("Leaky ReLU")
"""


def _mutated(solved, edits):
    nb = copy.deepcopy(solved)
    for grade_id, code in edits:
        _append(nb, grade_id, code)
    return nb


def build_samples(source_dir, release_dir):
    """``{student: {notebook file name: notebook node or raw text}}`` for hw1."""
    names = ("warmup", "cross_correlation", "batchnorm_dropout")
    source = {n: nbformat.read(Path(source_dir) / f"{n}.ipynb", as_version=4) for n in names}
    release = {n: nbformat.read(Path(release_dir) / f"{n}.ipynb", as_version=4) for n in names}
    solved = {n: solve(release[n], source[n]) for n in names}
    files = lambda nbs: {f"{n}.ipynb": nb for n, nb in nbs.items()}  # noqa: E731

    samples = {"perfect": files(solved), "blank": files(release)}
    samples["partial_conv"] = files({**solved,
                                     "cross_correlation": _mutated(solved["cross_correlation"], [("cross_corr_2d", FLIPPED_KERNEL)]),
                                     "batchnorm_dropout": _mutated(solved["batchnorm_dropout"],
                                                                   [("batchnorm_forward", UNBIASED_VARIANCE)])})
    samples["partial_dropout"] = files({**solved,
                                        "batchnorm_dropout": _mutated(solved["batchnorm_dropout"], [("dropout_forward", UNSCALED_DROPOUT)]),
                                        "warmup": _mutated(solved["warmup"], [("lr_curve_labels", SWAPPED_LABELS)])})
    syntax_error = copy.deepcopy(solved["batchnorm_dropout"])
    _cell(syntax_error, "dropout_forward").source += "\n    return out cache  # a typo\n"
    corrupt = nbformat.writes(solved["cross_correlation"])
    samples["broken"] = {"cross_correlation.ipynb": corrupt[: len(corrupt) // 2], "batchnorm_dropout.ipynb": syntax_error}
    samples["endless"] = files({**solved, "batchnorm_dropout": _mutated(solved["batchnorm_dropout"], [("dropout_backward", ENDLESS)])})
    hostile = copy.deepcopy(solved["cross_correlation"])
    _cell(hostile, "cross_corr_2d").source = HOSTILE_CROSS_CORR.strip() + "\n"
    test_cells = [c for c in hostile.cells if cells.is_test(c)]
    test_cells[0].source = "pass  # this test always passes now"
    hostile.cells.remove(test_cells[1])
    hostile_dropout = _mutated(solved["batchnorm_dropout"], [("dropout_forward", UNSCALED_DROPOUT + HOSTILE_DROPOUT)])
    hostile_warmup = _mutated(solved["warmup"], [("lr_curve_labels", HOSTILE_WARMUP_LABELS),
                                                 ("activation_name", HOSTILE_WARMUP_NAME)])
    samples["hostile"] = files({**solved, "cross_correlation": hostile, "batchnorm_dropout": hostile_dropout,
                                "warmup": hostile_warmup})
    return samples


def write_samples(samples, dest):
    """Write ``samples`` to ``dest/<student>/<file>`` (replacing ``dest``)."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    for student, notebooks in samples.items():
        (dest / student).mkdir(parents=True)
        for name, nb in notebooks.items():
            if isinstance(nb, str):
                (dest / student / name).write_text(nb)
            else:
                nbformat.write(nb, dest / student / name)


def main(argv=None):
    from eep590_utils.grading.course import Course

    course = Course()
    write_samples(build_samples(course.path("source", assignment="hw1"), course.path("release", assignment="hw1")),
                  course.root / "samples" / "hw1")
    print(f"wrote {course.root / 'samples' / 'hw1'}")


if __name__ == "__main__":
    sys.exit(main())
