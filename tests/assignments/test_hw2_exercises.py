"""hw2: the worked problems, the hand-designed filters and the NumPy conv / max-pool layers, graded by nbgrader.

One module-scoped autograde call (``eep590 autograde``, so every test cell is decided by its judge in
``source/hw2/judges/``, outside the student's kernel) grades every fake student at once: the instructor's
solution (every autograded cell at full marks), the generated release (runs, scores 0), and one student per
typical wrong answer (each loses exactly the autograded cells that check what it gets wrong, and nothing else).
"""
import re

import pytest
from nbgrader_harness import REPO, grade_ids, read_notebook, with_cell_source

from eep590_utils.grading import cells

pytestmark = pytest.mark.slow

HW = "hw2"
NOTEBOOKS = ["worked_problems", "hand_designed_filters", "conv_layers"]  # cnn_training is tested elsewhere
SOURCE = {name: REPO / "source" / HW / f"{name}.ipynb" for name in NOTEBOOKS}
JUDGES = {name: REPO / "source" / HW / "judges" / f"{name}.py" for name in NOTEBOOKS}

# ---------------------------------------------------------------------------------------------------------
# Typical wrong answers: (notebook, {grade_id of the solution cell: new source}, autograded cells it must fail)

FLIPPED_TRUE_CONV = '''
y_2d_valid = None
def conv2d_true(x, h, stride=1, pad=0):
    # Slides h over x as it is (cross-correlation): forgets the flip of a true convolution.
    xp = np.pad(x, pad)
    kh, kw = h.shape
    out_h = (xp.shape[0] - kh) // stride + 1
    out_w = (xp.shape[1] - kw) // stride + 1
    y = np.zeros((out_h, out_w))
    for m in range(out_h):
        for n in range(out_w):
            y[m, n] = np.sum(xp[m * stride:m * stride + kh, n * stride:n * stride + kw] * h)
    return y

y_2d_valid = conv2d_true(x_2d, h_2d)
'''

PAD_COUNTED_ONCE = '''
def conv_num_params(K, C, F):
    return K * K * C * F, F


def conv_output_shape(H, W, C, K, P, S, F):
    # Wrong: the padding is added on one side only.
    return (H - K + P) // S + 1, (W - K + P) // S + 1, F
'''

CONV_SHAPE_W_H_SWAPPED = '''
def conv_num_params(K, C, F):
    return K * K * C * F, F


def conv_output_shape(H, W, C, K, P, S, F):
    # Wrong order: returns width before height (W x H x C instead of H x W x C); right on square inputs.
    return (W - K + 2 * P) // S + 1, (H - K + 2 * P) // S + 1, F
'''

RECT_NEVER_ENDS = '''
y_rect = None
# Uses the formula of 0 <= n <= 6 for every n >= 0: forgets that the rect ends at n = 6.
y_rect = np.where(n_axis >= 0, 2 - 0.5 ** np.clip(n_axis, 0, None), 0.0)
'''

SHIFT_WRONG_WAY = '''
y2_rect = None
# Shifts the rect to the left (x(n + 5)) instead of to the right.
y2_rect = np.array([sum(0.5 ** (n + 5 - k) for k in range(0, min(n + 5, 6) + 1)) if n >= -5 else 0.0 for n in n_axis])
'''

POOL2_NOT_HALVED = '''
table_params = [0, 3 * 3 * 1 * 10 + 10, 0, 3 * 3 * 10 * 10 + 10, 0, 0, 490 * 3 + 3]
# The second POOL2 row copies the first one (14 x 14 x 10) instead of halving the second CONV3's output.
table_activations = [(28, 28, 1), (28, 28, 10), (14, 14, 10), (14, 14, 10), (14, 14, 10), (490,), (3,)]
'''

LENET_NO_BIAS_FULL_C3 = '''
lenet_c1_params = 5 * 5 * 6                     # forgets the 6 biases
lenet_c1_connections = 5 * 5 * 6 * 28 * 28      # forgets the connections to the biases
lenet_c3_params = (6 * 5 * 5 + 1) * 16          # as if every C3 map read all six S2 maps
'''

VGG16_NO_BIASES = '''
def vgg16_table():
    # The weights only (the student answer of the handout): every CONV3 and FC row misses its biases.
    rows = [("Input", 224 * 224 * 3, 0)]
    h, c = 224, 3
    for channels, repeat in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
        for _ in range(repeat):
            rows.append((f"CONV3-{channels}", h * h * channels, 3 * 3 * c * channels))
            c = channels
        h //= 2
        rows.append(("POOL2", h * h * c, 0))
    inputs = h * h * c
    for outputs in (4096, 4096, 1000):
        rows.append((f"FC-{outputs}", outputs, inputs * outputs))
        inputs = outputs
    return rows
'''

BLUR_NOT_NORMALISED = '''
blur_kernel = np.ones((3, 3))   # a box filter whose weights sum to 9
'''

BLUR_IDENTITY = '''
blur_kernel = np.zeros((3, 3))
blur_kernel[1, 1] = 1.0         # non-negative, sums to 1, but does not average anything
'''

EDGE_NONZERO_SUM = '''
edge_kernel = np.array([[-1.0, 0.0, 1.0],
                        [-2.0, 1.0, 2.0],
                        [-1.0, 0.0, 1.0]])   # Sobel with a 1 in the centre: the weights sum to 1
'''

FILTER_FLIPPED = '''
def filter_2d(image, kernel):
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)[::-1, ::-1]   # flips the kernel (a true convolution)
    kh, kw = kernel.shape
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(image, ((ph, ph), (pw, pw)))
    out = np.zeros(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            out[i, j] = np.sum(padded[i:i + kh, j:j + kw] * kernel)
    return out
'''

CONV_FORWARD_FLIPPED = '''
def conv_forward_naive(x, w, b, conv_param):
    # A true convolution: the filters are flipped (consistently with the backward pass below).
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w_flip = w[:, :, ::-1, ::-1]
    out = np.zeros((N, F, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w_flip, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)
'''

CONV_BACKWARD_FLIPPED = '''
def conv_backward_naive(dout, cache):
    # The exact gradient of the flipped (true) convolution above: consistent, so the gradient check passes.
    x, w, b, conv_param = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w_flip = w[:, :, ::-1, ::-1]
    dx_pad = np.zeros_like(x_pad)
    dw_flip = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            dw_flip += np.tensordot(dout[:, :, i, j], x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w_flip, axes=([1], [0]))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw_flip[:, :, ::-1, ::-1], dout.sum(axis=(0, 2, 3))
'''

CONV_FORWARD_OFF_BY_ONE = CONV_FORWARD_FLIPPED.replace(
    "H_out = 1 + (H + 2 * pad - HH) // stride", "H_out = (H + 2 * pad - HH) // stride"
).replace(
    "W_out = 1 + (W + 2 * pad - WW) // stride", "W_out = (W + 2 * pad - WW) // stride"
).replace("w_flip = w[:, :, ::-1, ::-1]", "w_flip = w").replace(
    "# A true convolution: the filters are flipped (consistently with the backward pass below).",
    "# Off by one: forgets the + 1 in the output size (drops the last row and column of windows).")

POOL_SHAPE_CEIL = '''
def pool_output_shape(H, W, C, K, S):
    # Rounds up instead of down: right whenever the stride divides H - K and W - K evenly (as in the example).
    return -(-(H - K) // S) + 1, -(-(W - K) // S) + 1, C
'''

RECEPTIVE_FIELD_OFF_BY_ONE = '''
def receptive_field(L, K):
    return L * (K - 1)   # forgets the centre pixel
'''

EDGE_TOO_WEAK = '''
edge_kernel = np.array([[-0.1, 0.0, 0.1],
                        [-0.2, 0.0, 0.2],
                        [-0.1, 0.0, 0.1]])   # Sobel scaled by 0.1: sums to zero, but responds only 0.4 to a step
'''

CONV_BACKWARD_DB_MEAN = '''
def conv_backward_naive(dout, cache):
    # Right dx and dw, but db averages the upstream gradient instead of summing it (a missing scale).
    x, w, b, conv_param = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            dw += np.tensordot(dout[:, :, i, j], x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, dout.mean(axis=(0, 2, 3))
'''

CONV_BACKWARD_NO_STRIDE = CONV_BACKWARD_DB_MEAN.replace(
    "rows = slice(i * stride, i * stride + HH)", "rows = slice(i, i + HH)").replace(
    "cols = slice(j * stride, j * stride + WW)", "cols = slice(j, j + WW)").replace(
    "dout.mean(axis=(0, 2, 3))", "dout.sum(axis=(0, 2, 3))").replace(
    "# Right dx and dw, but db averages the upstream gradient instead of summing it (a missing scale).",
    "# Ignores the stride in the backward pass: right for stride 1 only.")

CONV_FORWARD_KERNEL_SWAPPED = CONV_FORWARD_FLIPPED.replace("F, _, HH, WW = w.shape", "F, _, WW, HH = w.shape").replace(
    "w_flip = w[:, :, ::-1, ::-1]", "w_flip = w").replace(
    "# A true convolution: the filters are flipped (consistently with the backward pass below).",
    "# Reads the kernel as (F, C, WW, HH): right for square kernels only (it fails inside np.tensordot otherwise).")

MAX_POOL_GRAD_TO_ALL = '''
def max_pool_backward_naive(dout, cache):
    # Wrong routing: every entry of the window receives the upstream gradient, not only the maximum.
    x, pool_param = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * S:i * S + PH, j * S:j * S + PW] += dout[:, :, i, j][:, :, None, None]
    return dx
'''

# Each mistake: (notebook, {grade_id of the solution cell: wrong source}, autograded cells it must fail).
MISTAKES = {
    "wp_flipped_kernel": ("worked_problems", {"y_2d_valid_answer": FLIPPED_TRUE_CONV},
                          {"y_2d_valid_values", "y_2d_s1_p1_values", "y_2d_s2_p1_values"}),
    "wp_padding_formula": ("worked_problems", {"conv_formulas": PAD_COUNTED_ONCE},
                           {"conv_output_shape_example", "conv_output_shape_general"}),
    "hdf_flipped_kernel": ("hand_designed_filters", {"filter_2d": FILTER_FLIPPED},
                           {"filter_2d_example", "filter_2d_matches_conv2d"}),
    "hdf_blur_not_normalised": ("hand_designed_filters", {"blur_kernel_answer": BLUR_NOT_NORMALISED},
                                {"blur_kernel_sums_to_one"}),
    "hdf_blur_identity": ("hand_designed_filters", {"blur_kernel_answer": BLUR_IDENTITY},
                          {"blur_kernel_smooths_noise"}),
    "hdf_edge_nonzero_sum": ("hand_designed_filters", {"edge_kernel_answer": EDGE_NONZERO_SUM},
                             {"edge_kernel_sums_to_zero", "edge_kernel_ignores_flat_image"}),
    "cl_flipped_kernel": ("conv_layers", {"conv_forward_naive": CONV_FORWARD_FLIPPED,
                                          "conv_backward_naive": CONV_BACKWARD_FLIPPED},
                          {"conv_forward_example", "conv_forward_matches_torch",
                           "conv_backward_dx_matches_torch", "conv_backward_dw_matches_torch"}),
    "cl_off_by_one_shape": ("conv_layers", {"conv_forward_naive": CONV_FORWARD_OFF_BY_ONE},
                            {"conv_forward_output_shape", "conv_forward_example", "conv_forward_matches_torch"}),
    "cl_max_pool_grad_to_all": ("conv_layers", {"max_pool_backward_naive": MAX_POOL_GRAD_TO_ALL},
                                {"max_pool_backward_gradient_check", "max_pool_backward_matches_torch"}),
    "wp_pool_shape_ceil": ("worked_problems", {"pool_formula": POOL_SHAPE_CEIL}, {"pool_output_shape_general"}),
    "wp_receptive_field_off_by_one": ("worked_problems", {"receptive_field_formula": RECEPTIVE_FIELD_OFF_BY_ONE},
                                      {"receptive_field_example", "receptive_field_general"}),
    "wp_conv_shape_w_h_swapped": ("worked_problems", {"conv_formulas": CONV_SHAPE_W_H_SWAPPED},
                                  {"conv_output_shape_general"}),
    "wp_rect_never_ends": ("worked_problems", {"y_rect_answer": RECT_NEVER_ENDS}, {"y_rect_decaying_part"}),
    "wp_shift_wrong_way": ("worked_problems", {"y2_rect_answer": SHIFT_WRONG_WAY},
                           {"y2_rect_zero_before_shift", "y2_rect_values"}),
    "wp_pool2_not_halved": ("worked_problems", {"network_table_answers": POOL2_NOT_HALVED},
                            {"network_table_pool2_activations"}),
    "wp_lenet_no_bias_full_c3": ("worked_problems", {"lenet_answers": LENET_NO_BIAS_FULL_C3},
                                 {"lenet_c1_params_correct", "lenet_c1_connections_correct", "lenet_c3_params_correct"}),
    "wp_vgg16_no_biases": ("worked_problems", {"vgg16_table": VGG16_NO_BIASES},
                           {"vgg16_conv_params_correct", "vgg16_fc_params_correct", "vgg16_totals_correct"}),
    "cl_kernel_swapped": ("conv_layers", {"conv_forward_naive": CONV_FORWARD_KERNEL_SWAPPED},
                          {"conv_forward_output_shape", "conv_forward_matches_torch", "conv_backward_gradient_check",
                           "conv_backward_dx_matches_torch", "conv_backward_dw_matches_torch",
                           "conv_backward_db_matches_torch"}),
    "hdf_edge_too_weak": ("hand_designed_filters", {"edge_kernel_answer": EDGE_TOO_WEAK},
                          {"edge_kernel_responds_to_step"}),
    "cl_db_mean_not_sum": ("conv_layers", {"conv_backward_naive": CONV_BACKWARD_DB_MEAN},
                           {"conv_backward_gradient_check", "conv_backward_db_matches_torch"}),
    "cl_backward_ignores_stride": ("conv_layers", {"conv_backward_naive": CONV_BACKWARD_NO_STRIDE},
                                   {"conv_backward_gradient_check", "conv_backward_dx_matches_torch",
                                    "conv_backward_dw_matches_torch"}),
}

# Fake students. Mistakes in different cells whose tests do not depend on each other share one student (each
# notebook run costs seconds); a student loses exactly the union of its mistakes' cells, each at 0 points.
STUDENTS = {
    "wp_wrong": ["wp_flipped_kernel", "wp_padding_formula", "wp_pool_shape_ceil", "wp_receptive_field_off_by_one",
                 "wp_rect_never_ends", "wp_shift_wrong_way", "wp_pool2_not_halved", "wp_lenet_no_bias_full_c3",
                 "wp_vgg16_no_biases"],
    "wp_w_h_swapped": ["wp_conv_shape_w_h_swapped"],
    "hdf_wrong": ["hdf_flipped_kernel", "hdf_blur_not_normalised", "hdf_edge_nonzero_sum"],
    "hdf_identity_blur": ["hdf_blur_identity", "hdf_edge_too_weak"],
    "cl_wrong": ["cl_flipped_kernel", "cl_max_pool_grad_to_all"],
    "cl_off_by_one": ["cl_off_by_one_shape", "cl_db_mean_not_sum"],
    "cl_no_stride": ["cl_backward_ignores_stride"],
    "cl_kernel_swapped": ["cl_kernel_swapped"],
}
STUDENT_OF = {mistake: student for student, mistakes in STUDENTS.items() for mistake in mistakes}


def _wrong_notebook(mistakes):
    (name,) = {MISTAKES[m][0] for m in mistakes}
    nb = read_notebook(SOURCE[name])
    for mistake in mistakes:
        for grade_id, source in MISTAKES[mistake][1].items():
            nb = with_cell_source(nb, grade_id, source.strip("\n"))
    return name, nb


@pytest.fixture(scope="module")
def grades(scratch_course):
    """One autograde call: the solution, the release and every wrong answer -> {student: {nb: {id: (score, max)}}}."""
    release = scratch_course.generate(HW)
    submissions = {
        "solution": {name: SOURCE[name] for name in NOTEBOOKS},
        "release": {name: release / f"{name}.ipynb" for name in NOTEBOOKS},
    }
    for student, mistakes in STUDENTS.items():
        name, nb = _wrong_notebook(mistakes)
        submissions[student] = {name: nb}
    return scratch_course.autograde(HW, submissions)


def _autograded_ids(name):
    return set(grade_ids(read_notebook(SOURCE[name]), "tests"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_scores_full_marks(grades, name):
    got = grades["solution"][name]
    tests = _autograded_ids(name)
    assert tests, f"{name} has no autograded cells"
    assert tests <= set(got), f"{name}: cells not graded: {sorted(tests - set(got))}"
    short = {g: got[g] for g in tests if got[g][0] != got[g][1]}
    assert not short, f"{name}: the solution loses points on {short}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_runs_and_scores_zero(scratch_course, grades, name):
    got = grades["release"][name]
    tests = _autograded_ids(name)
    assert tests <= set(got), f"{name}: cells not graded in the release: {sorted(tests - set(got))}"
    scored = {g: got[g] for g in tests if got[g][0] != 0}
    assert not scored, f"{name}: the release scores points on {scored}"
    assert sum(got[g][1] for g in tests) > 0
    # It ran: every code cell but the test cells (decided by their judges, never run) was executed, and every
    # test cell shows its verdict.
    graded = scratch_course.autograded_notebook(HW, "release", name)
    code = [c for c in graded.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id") not in tests]
    assert code and all(c.execution_count is not None for c in code), f"{name}: not every cell of the release ran"
    errors = {o.ename for c in code for o in c.outputs if o.output_type == "error"}
    broken = errors & {"ModuleNotFoundError", "ImportError", "FileNotFoundError", "SyntaxError", "NameError"}
    assert not broken, f"{name}: the release itself is broken ({broken})"
    verdicts = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") in tests]
    assert all(c.outputs for c in verdicts), f"{name}: a test cell of the release shows no verdict"


def test_every_mistake_has_a_student():
    assert sorted(STUDENT_OF) == sorted(MISTAKES)
    for student, mistakes in STUDENTS.items():
        cells = [MISTAKES[m][2] for m in mistakes]
        assert sum(len(c) for c in cells) == len(set().union(*cells)), f"{student}: mistakes share test cells"


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_wrong_answer_loses_exactly_its_points(grades, mistake):
    name, _, must_fail = MISTAKES[mistake]
    student = STUDENT_OF[mistake]
    got = grades[student][name]
    tests = _autograded_ids(name)
    assert must_fail <= tests
    zero = {g: got[g] for g in must_fail if got[g][0] != 0}
    assert not zero, f"{mistake}: still scores on {zero}"
    lost = {g for g in tests if got[g][0] != got[g][1]}
    expected = set().union(*(MISTAKES[m][2] for m in STUDENTS[student]))
    assert lost == expected, f"{student} ({', '.join(STUDENTS[student])}): lost {sorted(lost)}, expected {sorted(expected)}"


RELEASE_MUST_NOT_CONTAIN = {
    "worked_problems": ["bn_1d_mean = 3.0", "conv2d_true", "K * K * C * F", "rf_conv_pool_conv = 8",
                        "g4 = np.array([0.1, 0.9, 0.0])", "BEGIN MARK SCHEME", "Rubric",
                        "lenet_c3_params = 6 * (3 * 25 + 1)", "3 * 3 * c * channels + channels", "X -> µ"],
    "hand_designed_filters": ["np.outer(_g, _g)", "[-2.0, 0.0, 2.0]", "BEGIN MARK SCHEME", "Rubric"],
    "conv_layers": ["np.tensordot", "np.unravel_index"],
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_leaks_no_solution_or_hidden_test(scratch_course, grades, name):
    text = (scratch_course.root / "release" / HW / f"{name}.ipynb").read_text()
    for marker in ["BEGIN SOLUTION", "HIDDEN TESTS", *RELEASE_MUST_NOT_CONTAIN[name]]:
        assert marker not in text, f"the release of {name} contains {marker!r}"
    # ... while the source has them (so that the check above means something).
    source = SOURCE[name].read_text()
    assert all(marker in source for marker in RELEASE_MUST_NOT_CONTAIN[name])


def _points(cell):
    return cell.metadata.get("nbgrader", {}).get("points", 0) if (
        cell.metadata.get("nbgrader", {}).get("grade") or cell.metadata.get("nbgrader", {}).get("task")) else 0


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_heading_points_add_up(name):
    """Every heading '(n points)' equals the points of the graded cells under it; the title/table total too."""
    nb = read_notebook(SOURCE[name])
    heading = re.compile(r"^(#{1,3}) .*\((\d+) points?\)\s*$", re.M)
    open_headings = []  # [level, claimed, running sum, text]
    checked = 0

    def close(level):
        nonlocal checked
        while open_headings and open_headings[-1][0] >= level:
            lvl, claimed, total, text = open_headings.pop()
            assert total == claimed, f"{name}: '{text}' claims {claimed} points, its graded cells have {total}"
            checked += 1

    for cell in nb.cells:
        if cell.cell_type == "markdown" and not cell.metadata.get("nbgrader", {}).get("task"):
            for match in heading.finditer(cell.source):
                close(len(match.group(1)))
                open_headings.append([len(match.group(1)), int(match.group(2)), 0, match.group(0).strip()])
        for entry in open_headings:
            entry[2] += _points(cell)
    close(1)
    assert checked >= 3
    total = sum(_points(c) for c in nb.cells)
    table_total = re.search(r"\*\*Total\*\* \| \*\*(\d+)\*\*", nb.cells[0].source)
    assert table_total and int(table_total.group(1)) == total, f"{name}: the table's total is not {total}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_notebook_conventions(name):
    nb = read_notebook(SOURCE[name])
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert all(c.get("id") for c in nb.cells)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} stores outputs"
    assert cells.grade_id(code[0]) == "setup_check", f"{name}: the set-up check is the first code cell"
    first = code[1].source
    for line in ["import numpy as np", "import torch", "from eep590_utils import *"]:
        assert line in first, f"{name}: the first code cell lacks {line!r}"
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            # A hidden test cell says in words what its judge checks; its code lives in the judge alone.
            assert "HIDDEN TESTS" not in cell.source, f"{name}/{meta['grade_id']}: hidden-test code left in the notebook"
            assert cell.source.lstrip().startswith("#"), f"{name}/{meta['grade_id']}: test cell without a comment first"
        if meta.get("task"):
            assert "=== BEGIN MARK SCHEME ===" in cell.source and "=== END MARK SCHEME ===" in cell.source
    # The images that the notebooks read are committed beside them, and stay small (they travel into every submission).
    images = sorted((REPO / "source" / HW / "images").glob("*"))
    assert images and all(p.suffix == ".png" and p.stat().st_size < 8_000 for p in images), (
        [(p.name, p.stat().st_size) for p in images])


# ---------------------------------------------------------------------------------------------------------
# Judges: one per test cell, none for a cell that does not exist, never in a release


def test_release_has_no_judges(scratch_course, grades):
    release = scratch_course.root / "release" / HW
    assert not (release / "judges").exists()
    assert not list(release.rglob("*.py")), "a .py file reached the release"
    committed = REPO / "release" / HW
    assert not (committed / "judges").exists()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_hidden_checks_live_in_the_judge_only(name):
    """Hidden test cells hold only comments, and no judge's reference values or messages reach the notebook."""
    nb = read_notebook(SOURCE[name])
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code" and "hidden test" in cell.source.lower():
            code = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
            assert not code, f"{name}/{meta['grade_id']}: a hidden test cell still holds code: {code[:2]}"
    release = (REPO / "release" / HW / f"{name}.ipynb").read_text()
    for secret in ["was the kernel flipped", "default_rng(593", "default_rng(5920)", "is wrong after the rect has ended"]:
        assert secret not in release, f"the committed release of {name} contains {secret!r}"


def test_no_judge_broke(scratch_course, grades):
    """Every verdict is the student's: no judge crashed on what a student (right, wrong or blank) returned."""
    broken = {(student, name): [p for p in rec.problems if p[0] == "judge-error"]
              for student, record in scratch_course.records.items() for name, rec in record.notebooks.items()}
    assert {k: v for k, v in broken.items() if v} == {}


# ---------------------------------------------------------------------------------------------------------
# What the release shows before the student answers, format checks, written questions, conventions


def test_no_figure_or_check_shows_a_graded_answer():
    """No cell simulates the batchnorm output (the answer of 1(a)/(b)); figures before an answer draw the input only;
    the visible check of 2(d) never states the output shapes (they are part of the answer)."""
    nb = read_notebook(SOURCE["worked_problems"])
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for simulated in ["batch_out", "multivariate_normal", "default_rng"]:
        assert simulated not in code, f"worked_problems still simulates a batch ({simulated!r})"
    ids = [c.metadata.get("nbgrader", {}).get("grade_id", c.get("id")) for c in nb.cells]
    for figure, answer in [("q1a-grid", "bn_1d_answers"), ("q1b-grid", "bn_2d_answers")]:
        assert ids.index(figure) < ids.index(answer)
        source = nb.cells[ids.index(figure)].source
        assert "bn_1d_mean" not in source and "bn_2d_mean" not in source
    fmt = nb.cells[ids.index("y_2d_stride_pad_format")].source
    assert "(5, 5)" not in fmt and "(3, 3)" not in fmt


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_format_checks_award_no_points_and_no_shape_only_test_does(name):
    """Format checks are locked, ungraded cells; no graded cell of worked_problems checks only a stated shape or type."""
    nb = read_notebook(SOURCE[name])
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.source.startswith("# Format check"):
            assert meta.get("locked") and not meta.get("grade") and not meta.get("solution"), meta
        if name == "worked_problems" and meta.get("grade") and cell.cell_type == "code":
            assert not re.search(r"shape_and|_shape$|_are_ints|_format$", meta["grade_id"]), meta["grade_id"]


def test_written_answers_of_the_new_questions():
    nb = read_notebook(SOURCE["worked_problems"])
    by_id = {cells.grade_id(c): c for c in nb.cells}
    assert cells.points(by_id["bn_graph"]) == 4 and cells.points(by_id["homework_process"]) == 1
    assert "bn_graph.png" in by_id["bn_graph_question"].source
    assert "any honest answer to all three parts gets the point" in by_id["homework_process_question"].source
    for edge in ["X -> µ", "µ -> σ²", "σ² -> Z", "Z -> Y", "γ -> Y", "β -> Y"]:
        assert edge in by_id["bn_graph"].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_h_w_c_and_titles(name):
    """hw2 writes feature maps as H x W x C (as hw3 does), never asks for a separate written submission, and
    numbers its parts 1 to 3 here (part 4 is cnn_training)."""
    nb = read_notebook(SOURCE[name])
    text = "\n".join(c.source for c in nb.cells)
    assert not re.search(r"W \\times H|W x H|\(W, H|W_out, H_out|written submission", text), name
    part = {"worked_problems": 1, "hand_designed_filters": 2, "conv_layers": 3}[name]
    assert nb.cells[0].source.startswith(f"# Homework 2, part {part}:")
