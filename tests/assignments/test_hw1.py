"""hw1: warm-up, 2-D cross-correlation, batchnorm / dropout / spatial batchnorm.

One ``eep590 autograde`` run (module-scoped) grades several fake students at once, every test cell decided
by its judge in ``source/hw1/judges/`` (outside the student's kernel, on inputs drawn afresh each run): the
instructor's solution, the generated release, and students with typical mistakes planted in the solution (a
flipped kernel, a function returning None, an off-by-one output size, the wrong dtype, the unbiased variance,
the wrong reduction axes, kernels indexed along the wrong axis, test mode normalizing with the batch statistics,
unscaled dropout, p read as the keep probability, momentum and 1 - momentum swapped in the running averages,
wrong parameter counts, wrong labels and names in the warm-up). The tests prove that
the solution scores full marks, the release runs and scores 0, and every mistake loses exactly the points of
the cells that should catch it while every other cell keeps full marks; that every test cell has a judge and
every judge a test cell; that no hidden test is left in the notebooks; and that the warm-up's figures are
committed images drawn by its judge file, so no variable in a release says which panel is which.
"""
import re

import numpy as np
import pytest
from nbgrader_harness import REPO, cell_by_grade_id, grade_ids, read_notebook, replace_in_cell

from eep590_utils.grading.judge import load_judges

pytestmark = pytest.mark.slow

HW = "hw1"
SOURCE = REPO / "source" / HW

# The grade_ids and points of every graded cell (autograded tests and manually graded tasks). Grades are
# stored by grade_id, so these must stay stable across terms. The totals are the handout's, except that
# batchnorm_dropout adds Question 6 (5 points: epsilon, a minibatch of one, parameter counts).
GRADED_CELLS = {
    "warmup": {
        "deep_vs_shallow": 2, "deep_training_optimization": 2, "deep_training_compute_memory": 2,
        "validation_set": 1, "lr_curve_labels_format": 1, "lr_curve_labels_correct": 3,
        "activation_name_correct": 1, "activation_why_and_difference": 2, "batchnorm_minibatch": 2,
        "cnn_architectures": 4, "hard_soft_attention": 3, "data_augmentation": 2,
    },
    "cross_correlation": {
        "cross_corr_2d_example": 2, "cross_corr_2d_shape_and_dtype": 1, "cross_corr_2d_matches_conv2d": 3,
        "cross_corr_2d_keeps_dtype": 1, "strided_output_shape": 1, "strided_fir_example": 1,
        "strided_matches_conv2d": 2, "strided_keeps_dtype": 1, "multi_in_out_example": 1,
        "multi_in_out_matches_conv2d": 2,
    },
    "batchnorm_dropout": {
        "batchnorm_forward_train_stats": 2, "batchnorm_forward_test_mode": 1,
        "batchnorm_forward_matches_torch": 2, "batchnorm_running_averages": 1,
        "batchnorm_backward_gradient_check": 2, "batchnorm_backward_matches_autograd": 2,
        "dropout_forward_statistics": 1, "dropout_forward_matches_definition": 2,
        "dropout_backward_gradient_check": 1, "dropout_backward_matches_definition": 1,
        "spatial_batchnorm_forward_train_stats": 2, "spatial_batchnorm_forward_test_mode": 1,
        "spatial_batchnorm_forward_matches_torch": 3, "spatial_batchnorm_backward_gradient_check": 2,
        "spatial_batchnorm_backward_matches_autograd": 2,
        "bn_epsilon": 1, "bn_batch_of_one": 1, "batchnorm_forward_batch_of_one": 1,
        "bn_trainable_params_value": 1, "fc_bn_trainable_params_value": 1,
    },
}
HANDOUT_POINTS = {"warmup": 25, "cross_correlation": 15, "batchnorm_dropout": 25}
KIT_POINTS = {"warmup": 25, "cross_correlation": 15, "batchnorm_dropout": 30}  # the title's total
WRITTEN = {"warmup": 9, "cross_correlation": 0, "batchnorm_dropout": 2}  # written questions per notebook
NOTEBOOKS = tuple(GRADED_CELLS)

# Mistakes planted into the solution: {student: {notebook: [(grade_id of the cell, old text, new text)]}}.
MISTAKES = {
    "hw1_mistakes_a": {
        "cross_correlation": [  # true convolution: the kernel is flipped
            ("cross_corr_2d", "(X[i:i + kh, j:j + kw] * K).sum()", "(X[i:i + kh, j:j + kw] * K.flip(0, 1)).sum()")],
        "batchnorm_dropout": [  # normalizes (and keeps running averages) with the unbiased variance
            ("batchnorm_forward", "var = x.var(axis=0)", "var = x.var(axis=0, ddof=1)")],
        "warmup": [  # "high" and "low" swapped; the wrong activation
            ("lr_curve_labels", '"A": "high", "B": "low"', '"A": "low", "B": "high"'),
            ("activation_name", 'activation_name = "ELU"', 'activation_name = "Leaky ReLU"')],
    },
    "hw1_mistakes_b": {
        "cross_correlation": [  # the stub's `Y = None` is returned
            ("cross_corr_2d", "Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum()", "pass\n    Y = None")],
        "batchnorm_dropout": [  # spatial batchnorm reshapes (N, C, H, W) to (-1, C) without moving C last ...
            ("spatial_batchnorm_forward", "x.transpose(0, 2, 3, 1).reshape(-1, C)", "x.reshape(-1, C)"),
            ("spatial_batchnorm_forward", "out_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "out_flat.reshape(N, C, H, W)"),
            ("spatial_batchnorm_backward", "dout.transpose(0, 2, 3, 1).reshape(-1, C)", "dout.reshape(-1, C)"),
            ("spatial_batchnorm_backward", "dx_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "dx_flat.reshape(N, C, H, W)"),
            # ... and, independently, dropout without the 1 / (1 - p) rescaling (backward uses the same mask)
            ("dropout_forward", "(rng.random(x.shape) >= p) / (1 - p)", "(rng.random(x.shape) >= p).astype(x.dtype)")],
    },
    "hw1_mistakes_c": {
        "cross_correlation": [  # strided output size (H + 2p - k + 1) // s: off by one for some strides
            ("cross_corr_2d_strided",
             "    H_out = (H + 2 * padding - kh) // stride + 1\n    W_out = (W + 2 * padding - kw) // stride + 1",
             "    H_out = (H + 2 * padding - kh + 1) // stride\n    W_out = (W + 2 * padding - kw + 1) // stride")],
        "batchnorm_dropout": [  # running variance with the unbiased estimate (as PyTorch keeps it) ...
            ("batchnorm_forward", "(1 - momentum) * var", "(1 - momentum) * x.var(axis=0, ddof=1)"),
            # ... and, independently, a dropout backward pass that returns None
            ("dropout_backward", "dx = dout * mask", "pass")],
    },
    "hw1_mistakes_d": {
        "cross_correlation": [  # the output is always float32 (torch's default dtype), whatever X's dtype
            ("cross_corr_2d", "Y = torch.zeros((H - kh + 1, W - kw + 1), dtype=X.dtype, device=X.device)",
             "Y = torch.zeros((H - kh + 1, W - kw + 1), device=X.device)")],
        "batchnorm_dropout": [  # statistics over the wrong axis (per example: layer norm) ...
            ("batchnorm_forward", "mu = x.mean(axis=0)\n        var = x.var(axis=0)",
             "mu = x.mean(axis=1, keepdims=True)\n        var = x.var(axis=1, keepdims=True)"),
            # ... and, independently, p read as the probability of keeping
            ("dropout_forward", "(rng.random(x.shape) >= p) / (1 - p)", "(rng.random(x.shape) < p) / p")],
    },
    "hw1_mistakes_e": {
        "cross_correlation": [  # the kernels indexed along the wrong axis: K[:, o] taken as output o's kernels
            ("corr2d_multi_in_out", "for K_o in K])", "for K_o in K.transpose(0, 1)])")],
        "batchnorm_dropout": [  # test mode normalizes with the minibatch statistics, not the running averages
            ("batchnorm_forward", "out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta",
             "out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta")],
        "warmup": [  # a different activation (SELU is not the plotted ELU)
            ("activation_name", 'activation_name = "ELU"', 'activation_name = "SELU"')],
    },
    "hw1_mistakes_f": {
        "batchnorm_dropout": [  # momentum and 1 - momentum swapped in both running averages ...
            ("batchnorm_forward", "running_mean = momentum * running_mean + (1 - momentum) * mu",
             "running_mean = (1 - momentum) * running_mean + momentum * mu"),
            ("batchnorm_forward", "running_var = momentum * running_var + (1 - momentum) * var",
             "running_var = (1 - momentum) * running_var + momentum * var"),
            # ... and, independently, the running averages counted as parameters, and the bias left out
            ("bn_param_counts", "bn_trainable_params = 40 + 40", "bn_trainable_params = 4 * 40"),
            ("bn_param_counts", "64 * 40 + 40 + bn_trainable_params", "64 * 40 + 80")],
    },
}

_BN_FORWARD = {"batchnorm_forward_train_stats", "batchnorm_forward_matches_torch", "batchnorm_running_averages"}
_BN_BACKWARD = {"batchnorm_backward_gradient_check", "batchnorm_backward_matches_autograd"}
_SPATIAL_ALL_BUT_TEST_MODE = {"spatial_batchnorm_forward_train_stats", "spatial_batchnorm_forward_matches_torch",
                              "spatial_batchnorm_backward_gradient_check",
                              "spatial_batchnorm_backward_matches_autograd"}
_DROPOUT_FORWARD = {"dropout_forward_statistics", "dropout_forward_matches_definition"}

# The autograded cells that must score 0 for each mistake; every other autograded cell keeps full marks.
EXPECTED_ZEROS = {
    "hw1_mistakes_a": {
        # multi-channel correlation is built on cross_corr_2d; stride/padding is a separate function
        "cross_correlation": {"cross_corr_2d_example", "cross_corr_2d_matches_conv2d",
                              "multi_in_out_example", "multi_in_out_matches_conv2d"},
        # the backward formula assumes the biased variance, so its gradient checks fail too; test mode
        # (normalizing with given running averages) is still right
        # a minibatch of one example: the unbiased variance divides by N - 1 = 0 (NaN)
        "batchnorm_dropout": _BN_FORWARD | _BN_BACKWARD | _SPATIAL_ALL_BUT_TEST_MODE | {"batchnorm_forward_batch_of_one"},
        "warmup": {"lr_curve_labels_correct", "activation_name_correct"},
    },
    "hw1_mistakes_b": {
        "cross_correlation": {"cross_corr_2d_example", "cross_corr_2d_shape_and_dtype",
                              "cross_corr_2d_matches_conv2d", "cross_corr_2d_keeps_dtype",
                              "multi_in_out_example", "multi_in_out_matches_conv2d"},
        # spatial: forward and backward are consistent, so the gradient check passes and only the references
        # catch it; dropout: likewise, the backward pass matches its unscaled forward pass (gradient check passes)
        "batchnorm_dropout": {"spatial_batchnorm_forward_train_stats", "spatial_batchnorm_forward_test_mode",
                              "spatial_batchnorm_forward_matches_torch",
                              "spatial_batchnorm_backward_matches_autograd"}
                             | _DROPOUT_FORWARD | {"dropout_backward_matches_definition"},
    },
    "hw1_mistakes_c": {
        "cross_correlation": {"strided_output_shape", "strided_fir_example", "strided_matches_conv2d"},
        # (the unbiased running variance of a minibatch of one example is NaN)
        "batchnorm_dropout": {"batchnorm_running_averages", "spatial_batchnorm_forward_matches_torch",
                              "batchnorm_forward_batch_of_one",
                              "dropout_backward_gradient_check", "dropout_backward_matches_definition"},
    },
    "hw1_mistakes_d": {
        "cross_correlation": {"cross_corr_2d_keeps_dtype"},
        # test mode (with given running averages) is right: only the train branch uses the wrong axis
        "batchnorm_dropout": (_BN_FORWARD | _BN_BACKWARD | _SPATIAL_ALL_BUT_TEST_MODE | _DROPOUT_FORWARD
                              | {"batchnorm_forward_batch_of_one", "dropout_backward_matches_definition"}),
    },
    "hw1_mistakes_e": {
        "cross_correlation": {"multi_in_out_example", "multi_in_out_matches_conv2d"},
        # spatial batchnorm calls batchnorm_forward, so its test mode is wrong too; train mode is right
        "batchnorm_dropout": {"batchnorm_forward_test_mode", "batchnorm_forward_matches_torch",
                              "spatial_batchnorm_forward_test_mode", "spatial_batchnorm_forward_matches_torch"},
        "warmup": {"activation_name_correct"},
    },
    "hw1_mistakes_f": {
        # only the running averages are wrong: the output, test mode (given running averages) and the gradients
        # are right; spatial batchnorm's reference test compares its running averages too
        "batchnorm_dropout": {"batchnorm_running_averages", "spatial_batchnorm_forward_matches_torch",
                              "bn_trainable_params_value", "fc_bn_trainable_params_value"},
    },
}


def source_notebook(name):
    return read_notebook(SOURCE / f"{name}.ipynb")


def planted(name, edits):
    """The solution notebook ``name`` with each ``(grade_id, old, new)`` text replacement applied."""
    nb = source_notebook(name)
    for grade_id, old, new in edits:
        nb = replace_in_cell(nb, grade_id, old, new, once=True)
    return nb


@pytest.fixture(scope="module")
def graded(scratch_course):
    """One autograde run for all fake students: {student: {notebook: {grade_id: (score, max_score)}}}."""
    release = scratch_course.generate(HW)
    submissions = {
        "hw1_solution": {name: SOURCE / f"{name}.ipynb" for name in NOTEBOOKS},
        "hw1_release": {name: release / f"{name}.ipynb" for name in NOTEBOOKS},
    }
    for student, notebooks in MISTAKES.items():
        submissions[student] = {name: planted(name, edits) for name, edits in notebooks.items()}
    return scratch_course.autograde(HW, submissions)


def _autograded(name):
    return grade_ids(source_notebook(name), "tests")


# ---------------------------------------------------------------------------------------------- static checks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_graded_cells_have_stable_ids_and_the_handouts_points(name):
    nb = source_notebook(name)
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):  # tests and written answers; the 0-point question cells carry no points
            found[meta["grade_id"]] = meta["points"]
    assert found == GRADED_CELLS[name]
    assert sum(found.values()) == KIT_POINTS[name]
    assert re.search(rf"\({KIT_POINTS[name]} points\)", nb.cells[0].source.splitlines()[0])


def test_headers_say_where_the_kit_departs_from_the_handout():
    """Where the kit splits a handout's points differently or adds points, the notebook's header says so."""
    cross = source_notebook("cross_correlation").cells[0].source
    assert "all of its 15 points to `cross_corr_2d`" in " ".join(cross.split())
    bn = " ".join(source_notebook("batchnorm_dropout").cells[0].source.split())
    assert "all of its 25 points to spatial batch normalization" in bn and "Question 6 (5 points)" in bn
    total = sum(KIT_POINTS.values())
    assert total != sum(HANDOUT_POINTS.values()) and f"homework 1 has {total} points" in bn


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_heading_points_add_up(name):
    """Every '## ... (n points)' heading carries the points of the graded cells up to the next heading."""
    sections = []
    for cell in source_notebook(name).cells:
        first = cell.source.splitlines()[0] if cell.source else ""
        if cell.cell_type == "markdown" and first.startswith("## "):
            match = re.search(r"\((\d+) points?\)", first)
            assert match, f"heading without points: {first!r}"
            sections.append([first, int(match.group(1)), 0])
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("task"):
            assert sections, f"graded cell {meta['grade_id']} before the first heading"
            sections[-1][2] += meta["points"]
    assert sections
    for heading, stated, counted in sections:
        assert stated == counted, f"{heading!r}: the heading says {stated} points, its cells carry {counted}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_written_answers_are_graded_answer_cells_under_locked_questions(name):
    nb = source_notebook(name)
    tasks = [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("task")]
    assert len(tasks) == WRITTEN[name]
    for cell in tasks:
        assert cell.metadata.nbgrader["locked"] and cell.metadata.nbgrader["points"] == 0
        assert "=== BEGIN MARK SCHEME ===" in cell.source and "=== END MARK SCHEME ===" in cell.source
        following = nb.cells[nb.cells.index(cell) + 1]
        meta = following.metadata.get("nbgrader", {})
        assert following.cell_type == "markdown" and meta.get("grade") and meta.get("solution")
        assert meta["points"] == GRADED_CELLS[name][meta["grade_id"]]
        assert following.source.strip() and following.source.strip() != "YOUR ANSWER HERE"  # the model answer


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_hidden_test_cells_keep_only_their_description(name):
    """A hidden test's code lives in its judge alone: the cell keeps the comment saying what is checked."""
    nb = source_notebook(name)
    for cell in nb.cells:
        assert "BEGIN HIDDEN TESTS" not in cell.source and "END HIDDEN TESTS" not in cell.source
    hidden = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.startswith("# Hidden tests:")]
    assert hidden
    for cell in hidden:
        lines = cell.source.splitlines()
        assert lines and all(line.startswith("#") for line in lines), cell.source


def test_release_has_no_judges(scratch_course):
    release = scratch_course.generate(HW)
    assert not (release / "judges").exists()
    assert not list(release.rglob("*.py"))


def _warmup_judge_globals():
    return load_judges(SOURCE / "judges" / "warmup.py")["lr_curve_labels_correct"].__globals__


def test_warmup_images_are_what_the_judge_draws(tmp_path):
    """The committed figures of (e) and (f) are what the judge file draws (so its answer key describes them)."""
    import matplotlib.image

    judge = _warmup_judge_globals()
    judge["redraw_images"](tmp_path)
    for image in ("lr_panels.png", "activation.png"):
        committed = matplotlib.image.imread(SOURCE / "images" / image)
        drawn = matplotlib.image.imread(tmp_path / image)
        assert committed.shape == drawn.shape and np.abs(committed - drawn).max() < 0.05, (
            f"source/hw1/images/{image} is stale: redraw it with load_judges('source/hw1/judges/warmup.py')"
            "['lr_curve_labels_correct'].__globals__['redraw_images']()")


def test_warmup_answer_key_matches_the_curves():
    """Each panel's label in the judge's answer key fits the curve drawn there: "very high" leaves the plot,
    "optimal" ends lowest, "low" ends highest of the rest, "high" is the noisiest of those that converge."""
    judge = _warmup_judge_globals()
    truth, lrs = judge["TRUE_LABELS"], judge["PANEL_LEARNING_RATES"]
    assert sorted(truth.values()) == sorted(["low", "optimal", "high", "very high"]) and set(truth) == set("ABCD")
    curves = {truth[panel]: judge["sgd_loss_curve"](lr) for panel, lr in lrs.items()}
    start = curves["low"][0]
    assert all(np.isclose(c[0], start) for c in curves.values())  # same data, same starting point
    assert not np.all(np.isfinite(curves["very high"])) or curves["very high"].max() > 1.3 * start
    for label in ("low", "optimal", "high"):
        assert curves[label].max() <= 1.3 * start, label  # stays in the plot
    tail = {label: c[-50:] for label, c in curves.items()}
    assert tail["optimal"].mean() < tail["high"].mean() < tail["low"].mean()
    assert tail["high"].std() > 3 * tail["optimal"].std()
    assert sorted(lrs, key=lrs.get) == sorted(lrs, key=lambda p: ["low", "optimal", "high", "very high"].index(truth[p]))


def test_warmup_release_gives_no_answer_away(scratch_course):
    """No code cell of the warm-up's release computes or draws a graded answer: the figures are images, and
    neither the learning rates, the panel order nor the activation's formula is in the notebook."""
    release = scratch_course.generate(HW)
    nb = read_notebook(release / "warmup.ipynb")
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for secret in ("learning_rate", "0.004", "0.05", "0.3", "0.75", "permutation", "exp", "expm1", "where", "plt."):
        assert secret not in code, secret
    text = "\n".join(cell.source for cell in nb.cells)
    assert re.search(r"\belu\b", text, re.I) is None
    for image in ("lr_panels.png", "activation.png"):
        assert f"](images/{image})" in text and (release / "images" / image).is_file()


# ---------------------------------------------------------------------------------------------- grading
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_scores_full_marks(graded, name):
    grades = graded["hw1_solution"][name]
    tests = _autograded(name)
    assert tests, "no autograded cells"
    not_full = {gid: grades[gid] for gid in tests if grades[gid][0] != grades[gid][1]}
    assert not not_full, f"the solution loses points: {not_full}"
    assert {gid: grades[gid][1] for gid in grades if grades[gid][1]} == GRADED_CELLS[name]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_scores_zero(graded, name):
    grades = graded["hw1_release"][name]
    scored = {gid: grades[gid] for gid in _autograded(name) if grades[gid][0] != 0}
    assert not scored, f"the unanswered release scores points: {scored}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_runs_without_error_up_to_its_tests(scratch_course, graded, name):
    """Before the first test cell, only the students' own stubs (NotImplementedError) may raise."""
    nb = scratch_course.autograded_notebook(HW, "hw1_release", name)
    first_test = min(i for i, cell in enumerate(nb.cells) if cell.metadata.get("nbgrader", {}).get("grade")
                     and cell.cell_type == "code")
    ran = 0
    for cell in nb.cells[:first_test]:
        if cell.cell_type != "code":
            continue
        errors = [out for out in cell.outputs if out.output_type == "error"]
        stderr = [out for out in cell.outputs if out.output_type == "stream" and out.name == "stderr"]
        is_stub = cell.metadata.get("nbgrader", {}).get("solution", False)
        assert not stderr, f"cell {cell.id} writes to stderr: {stderr[0].text[:200]}"
        if is_stub:
            assert all(out.ename == "NotImplementedError" for out in errors), f"stub {cell.id}: {errors}"
        else:
            assert not errors, f"cell {cell.id} fails in the release: {errors[0].ename}: {errors[0].evalue}"
        assert cell.execution_count is not None, f"cell {cell.id} did not run"
        ran += 1
    assert ran >= 2


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_has_no_solutions_hidden_tests_or_mark_schemes(scratch_course, name):
    release = read_notebook(scratch_course.generate(HW) / f"{name}.ipynb")
    text = "\n".join(cell.source for cell in release.cells)
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "MARK SCHEME", "Model answer", "Rubric"):
        assert marker not in text
    # every solution region became a stub
    source_text = "\n".join(cell.source for cell in source_notebook(name).cells)
    assert text.count("raise NotImplementedError()") == source_text.count("### BEGIN SOLUTION") > 0


@pytest.mark.parametrize("student,name", [(s, n) for s, notebooks in MISTAKES.items() for n in notebooks])
def test_mistakes_lose_exactly_the_points_they_should(graded, student, name):
    grades = graded[student][name]
    expected_zero = EXPECTED_ZEROS[student][name]
    tests = _autograded(name)
    assert expected_zero <= set(tests)
    scored = {gid: grades[gid] for gid in expected_zero if grades[gid][0] != 0}
    assert not scored, f"{student}/{name}: the mistake keeps points in {scored}"
    lost = {gid: grades[gid] for gid in tests if gid not in expected_zero and grades[gid][0] != grades[gid][1]}
    assert not lost, f"{student}/{name}: cells that should keep full marks lost points: {lost}"


@pytest.mark.parametrize("student,name,grade_id,message", [
    ("hw1_mistakes_a", "cross_correlation", "cross_corr_2d_example", "flipped the kernel"),
    ("hw1_mistakes_a", "cross_correlation", "cross_corr_2d_matches_conv2d", "true convolution (flipped kernel)"),
    ("hw1_mistakes_b", "cross_correlation", "cross_corr_2d_shape_and_dtype", "is None: did you forget to return"),
    ("hw1_mistakes_c", "cross_correlation", "strided_output_shape", "has shape (2, 2), expected (3, 3)"),
    ("hw1_mistakes_d", "cross_correlation", "cross_corr_2d_keeps_dtype", "should be torch.float64, not torch.float32"),
    ("hw1_mistakes_a", "batchnorm_dropout", "batchnorm_forward_train_stats", "biased variance"),
    ("hw1_mistakes_b", "batchnorm_dropout", "dropout_forward_statistics", "divides the kept activations by (1 - p)"),
    ("hw1_mistakes_d", "batchnorm_dropout", "dropout_forward_statistics", "p is the probability of dropping"),
    ("hw1_mistakes_c", "batchnorm_dropout", "dropout_backward_gradient_check", "dx is None"),
    ("hw1_mistakes_d", "batchnorm_dropout", "batchnorm_running_averages",
     'bn_param["running_mean"] after train-mode call 1 (momentum 0.7) has shape'),
    ("hw1_mistakes_e", "batchnorm_dropout", "batchnorm_forward_test_mode",
     "test-mode out is normalized with the minibatch mean and variance"),
    ("hw1_mistakes_f", "batchnorm_dropout", "batchnorm_running_averages",
     "the running-average update is wrong: bn_param[\"running_mean\"] after train-mode call 1 (momentum 0.7)"),
    ("hw1_mistakes_f", "batchnorm_dropout", "batchnorm_running_averages", "momentum and 1 - momentum are swapped"),
    ("hw1_mistakes_f", "batchnorm_dropout", "bn_trainable_params_value", "counts running_mean and running_var"),
    ("hw1_mistakes_a", "batchnorm_dropout", "batchnorm_forward_batch_of_one", "out for a minibatch of one example"),
    ("hw1_mistakes_c", "cross_correlation", "strided_fir_example",
     "cross_corr_2d_strided(x, h, stride=2, padding=1) has shape (2, 3), expected (3, 3)"),
    ("hw1_mistakes_e", "cross_correlation", "multi_in_out_example", "corr2d_multi_in_out(X, K) has shape (2, 2, 2), expected (3, 2, 2)"),
])
def test_failures_say_what_is_wrong(scratch_course, graded, student, name, grade_id, message):
    cell = cell_by_grade_id(scratch_course.autograded_notebook(HW, student, name), grade_id)
    shown = "\n".join(out.get("evalue", "") + "".join(out.get("traceback", [])) for out in cell.outputs)
    assert message in shown, shown[-2000:]
