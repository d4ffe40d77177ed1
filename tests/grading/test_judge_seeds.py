"""Every judge accepts the solution whatever the run's seed: judges draw fresh inputs every run, so an input
that trips a correct answer (a random entry above a planted peak, two maxima of a pooling window closer than a
finite difference's step) would cost an honest student points in one run in a hundred. The solution notebook
runs in-process here (no kernel), its probes served by the real kernel-side code, for many seeds."""
import contextlib
import io
import json
import os

import pytest
from conftest import REPO

from eep590_utils.grading import cells, probe
from eep590_utils.grading.judge import Student, load_judges, seed_for, verdict

pytestmark = pytest.mark.slow
SEEDS = range(12)
NOTEBOOKS = ["hw1/warmup", "hw1/cross_correlation", "hw1/batchnorm_dropout", "hw2/worked_problems",
             "hw2/hand_designed_filters", "hw2/conv_layers", "hw3/warmup", "hw3/depthwise_separable",
             "hw3/compression"]  # hw2/cnn_training's judges read a trained checkpoint: graded in its own test


class _NoMagic:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _solution_namespace(path):
    import matplotlib
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    matplotlib.use("Agg")
    transform = TransformerManager().transform_cell
    namespace = {"__name__": "__main__", "get_ipython": _NoMagic}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or cells.grade_id(cell) == "setup_check" or cells.is_test(cell):
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(transform(cells.solution_body(cell.source)), path, "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_judge_accepts_the_solution_for_every_seed(name, monkeypatch):
    hw, notebook = name.split("/")
    folder = os.path.join(REPO, "source", hw)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the notebook's training is skipped, as when graded
    monkeypatch.chdir(folder)
    namespace = _solution_namespace(os.path.join(folder, f"{notebook}.ipynb"))
    monkeypatch.setattr(probe, "_namespace", lambda: namespace)

    def request(req):
        answers = []
        monkeypatch.setattr(probe, "_answer", answers.append)
        probe.serve(json.dumps(req))
        return answers[-1] if answers else None

    judges = load_judges(os.path.join(folder, "judges", f"{notebook}.py"))
    assert judges
    failures = []
    for grade_id, fn in judges.items():
        for seed in SEEDS:
            with contextlib.redirect_stdout(io.StringIO()):
                result = verdict(fn, Student(request, folder), seed_for(seed, grade_id))
            if not result[0] or getattr(result, "fraction", 1) < 1:
                failures.append(f"{grade_id} with seed {seed}: {result[1][:300]}")
                break
    assert not failures, "\n".join(failures)
