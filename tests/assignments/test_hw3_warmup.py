"""hw3 warm-up and depthwise-separable notebooks: structure, and grading of the solution, the release and
typical wrong answers (one ``eep590 autograde`` run for the whole module, every test cell decided by its judge in
``source/hw3/judges/``, outside the student's kernel, on inputs drawn afresh each run).

The tests prove that the solution scores full marks, the release scores 0, every planted mistake (biases left
out, FLOPs for MACs, a dense depthwise convolution, no pointwise convolution, a fixed padding, ReLU before batch
norm, ...) loses exactly the points of the cells that should catch it; that every test cell has a judge and every
judge a test cell; that no hidden test is left in the notebooks and no judge reaches the release."""
import re

import pytest
from nbgrader_harness import (
    REPO,
    ScratchCourse,
    cell_by_grade_id,
    grade_ids,
    read_notebook,
    replace_in_cell,
    with_cell_source,
)

HW = "hw3"
NOTEBOOKS = ("warmup", "depthwise_separable")
SOURCE = {name: REPO / "source" / HW / f"{name}.ipynb" for name in NOTEBOOKS}
JUDGES = {name: REPO / "source" / HW / "judges" / f"{name}.py" for name in NOTEBOOKS}

# Written questions of the handout's warm-up (the handout labels two questions "(f)"; here they are (a)-(i)).
WARMUP_TASKS = {
    "depthwise_separable_why": 5, "bitwidth_audio_vs_image": 4, "quantized_training_difficulty": 4,
    "low_rank_generalization": 4, "why_on_device": 4, "squeezenet_mobilenet": 5, "pruning_techniques": 5,
    "scree_plots": 4, "quantization_techniques": 5,
}


def _solution_region(nb, grade_id):
    """The text between BEGIN/END SOLUTION of a solution cell, to build wrong answers from."""
    return cell_by_grade_id(nb, grade_id).source


# ---------------------------------------------------------------- wrong answers to the warm-up (Part B)

W_CORRECT_B1 = """
standard_params = 3 * 3 * 128 * 256 + 256
standard_macs = 56 * 56 * 256 * (3 * 3 * 128)
separable_params = (3 * 3 * 128 + 128) + (128 * 256 + 256)
separable_macs = 56 * 56 * 128 * (3 * 3) + 56 * 56 * 256 * 128
"""

W_STACKS = """
def conv_stack_params(C):
    h = C // 2
    return [{p1}, {p2}, {p3}, {p4}, {p5}]

def conv_stack_macs(C, H, W):
    h = C // 2
    return [{m1}, {m2}, {m3}, {m4}, {m5}]

conv_stack_receptive_fields = {rf}
cheapest_7x7_stack = {cheapest}
"""
STACK_OK = dict(
    p1="49 * C * C + C", p2="2 * (7 * C * C + C)", p3="2 * (16 * C * C + C)", p4="3 * (9 * C * C + C)",
    p5="(C * h + h) + (9 * h * h + h) + (h * C + C)",
    m1="49 * H * W * C * C", m2="14 * H * W * C * C", m3="32 * H * W * C * C", m4="27 * H * W * C * C",
    m5="H * W * (h * C + 9 * h * h + C * h)", rf="[7, 7, 7, 7, 3]", cheapest="2",
)

W_INCEPTION = """
naive_macs = {naive}
naive_out_channels = {naive_ch}
reduced_macs = {reduced}
reduced_out_channels = {reduced_ch}
"""
INCEPTION_OK = dict(
    naive="1024 * 256 * (128 + 9 * 192 + 25 * 96)", naive_ch="128 + 192 + 96 + 256",
    reduced="1024 * (256 * 128 + 256 * 128 + 9 * 128 * 192 + 256 * 32 + 25 * 32 * 96 + 256 * 64)",
    reduced_ch="128 + 192 + 96 + 64",
)


def _warmup_variant(nb, b1=W_CORRECT_B1, stacks=None, inception=None):
    nb = with_cell_source(nb, "separable_counts_answers", b1)
    nb = with_cell_source(nb, "conv_stack_answers", W_STACKS.format(**{**STACK_OK, **(stacks or {})}))
    return with_cell_source(nb, "inception_answers", W_INCEPTION.format(**{**INCEPTION_OK, **(inception or {})}))


def warmup_variants(nb):
    """name -> (notebook, grade_ids that must score 0)."""
    return {
        # Biases left out everywhere (B1, B2); the pooling branch forgotten in the naive output depth (B3).
        "no_bias": (_warmup_variant(
            nb,
            b1=W_CORRECT_B1.replace("3 * 3 * 128 * 256 + 256", "3 * 3 * 128 * 256")
                           .replace("(3 * 3 * 128 + 128) + (128 * 256 + 256)", "3 * 3 * 128 + 128 * 256"),
            stacks=dict(p1="49 * C * C", p2="14 * C * C", p3="32 * C * C", p4="27 * C * C", p5="13 * C * C // 4"),
            inception=dict(naive_ch="128 + 192 + 96")),
            {"standard_params_value", "separable_params_value", "conv_stack_params_returns_five",
             "conv_stack_params_stacks_1_to_4", "conv_stack_params_bottleneck", "naive_out_channels_value"}),
        # FLOPs (2 x MACs) in B1 and B3; stack 5 counted three times as in the hw-D answer sheet.
        "flops_and_bottleneck_x3": (_warmup_variant(
            nb,
            b1=W_CORRECT_B1.replace("standard_macs = ", "standard_macs = 2 * ").replace("separable_macs = ", "separable_macs = 2 * "),
            stacks=dict(p5="3 * (C * h + 9 * h * h + h * C) + (h + h + C)", m5="3 * H * W * (h * C + 9 * h * h + C * h)"),
            inception=dict(naive="2 * " + INCEPTION_OK["naive"], reduced="2 * " + INCEPTION_OK["reduced"])),
            {"standard_macs_value", "separable_macs_value", "conv_stack_params_bottleneck",
             "conv_stack_macs_bottleneck", "naive_macs_value", "reduced_macs_value"}),
        # Depthwise counted as a full 128 -> 128 convolution; 4x4 + 4x4 taken as an 8x8 receptive field and the
        # bottleneck (3x3 receptive field) picked as "cheapest"; the 1x1 reductions left out of the reduced count.
        "dense_depthwise_rf_reduction": (_warmup_variant(
            nb,
            b1=W_CORRECT_B1.replace("(3 * 3 * 128 + 128)", "(3 * 3 * 128 * 128 + 128)")
                           .replace("56 * 56 * 128 * (3 * 3)", "56 * 56 * 128 * (3 * 3 * 128)"),
            stacks=dict(rf="[7, 7, 8, 7, 3]", cheapest="5"),
            inception=dict(reduced="1024 * (256 * 128 + 9 * 128 * 192 + 25 * 32 * 96 + 256 * 64)")),
            {"separable_params_value", "separable_macs_value", "conv_stack_receptive_fields_value",
             "cheapest_7x7_stack_value", "reduced_macs_value"}),
        # The bottleneck (1x1, 3x3, 1x1) taken to see 7x7 like the others.
        "bottleneck_rf_7": (_warmup_variant(nb, stacks=dict(rf="[7, 7, 7, 7, 7]")), {"conv_stack_receptive_fields_value"}),
        # Right answers given as NumPy integers: full marks.
        "numpy_numbers": (_warmup_variant(
            nb,
            b1="\n".join(line.replace("= ", "= np.int64(") + ")" if "=" in line else line
                         for line in W_CORRECT_B1.splitlines()),
            stacks={k: f"np.int64({v})" for k, v in STACK_OK.items() if k[0] in "pm"},
            inception={k: f"np.int64({v})" for k, v in INCEPTION_OK.items()}),
            set()),
    }


# ---------------------------------------------------------------- wrong answers to depthwise_separable

def dws_variants(nb):
    """name -> (notebook, grade_ids that must score 0). Module, parameter and MAC mistakes sit in different
    cells and are graded by different tests, so one notebook can carry one of each."""
    module = "depthwise_separable_conv"
    params = "parameter_counts"
    macs = "mac_counts"
    dense_depthwise = replace_in_cell(nb, module, "padding=kernel_size // 2, groups=in_channels, bias=bias)",
                               "padding=kernel_size // 2, bias=bias)")
    dense_depthwise = replace_in_cell(dense_depthwise, params,
                               "return kernel_size * kernel_size * in_channels * out_channels + (out_channels if bias else 0)",
                               "return kernel_size * kernel_size * in_channels * out_channels")
    dense_depthwise = replace_in_cell(dense_depthwise, params, "pointwise = in_channels * out_channels + (out_channels if bias else 0)",
                               "pointwise = in_channels * out_channels")
    dense_depthwise = replace_in_cell(dense_depthwise, params,
                               "depthwise = kernel_size * kernel_size * in_channels + (in_channels if bias else 0)",
                               "depthwise = kernel_size * kernel_size * in_channels")
    dense_depthwise = replace_in_cell(dense_depthwise, macs, "return standard, separable", "return 2 * standard, 2 * separable")

    no_pointwise = replace_in_cell(nb, module, "        out = self.pointwise(out)\n", "")
    no_pointwise = replace_in_cell(no_pointwise, params, "depthwise = kernel_size * kernel_size * in_channels +",
                            "depthwise = kernel_size * kernel_size * in_channels * in_channels +")
    no_pointwise = replace_in_cell(no_pointwise, macs, "h_out = (height + 2 * pad - kernel_size) // stride + 1", "h_out = height")
    no_pointwise = replace_in_cell(no_pointwise, macs, "w_out = (width + 2 * pad - kernel_size) // stride + 1", "w_out = width")

    fixed_padding = replace_in_cell(nb, module, "padding=kernel_size // 2, groups", "padding=1, groups")
    fixed_padding = replace_in_cell(fixed_padding, macs, "separable = h_out * w_out * in_channels * kernel_size * kernel_size + ",
                             "separable = ")

    relu_before_bn = replace_in_cell(nb, module, "out = F.relu(self.bn_depthwise(out))", "out = self.bn_depthwise(F.relu(out))")
    # evaluation mode normalizing with the batch statistics (the running averages ignored)
    batch_stats = replace_in_cell(nb, module, "out = F.relu(self.bn_depthwise(out))",
                           "out = F.relu(F.batch_norm(out, None, None, self.bn_depthwise.weight, self.bn_depthwise.bias, training=True))")
    return {
        "dense_depthwise_no_bias_flops": (dense_depthwise, {
            "separable_conv_layers", "separable_conv_matches_reference", "separable_conv_bn_relu",
            "standard_conv_params_value", "separable_conv_params_value",
            "standard_conv_macs_value", "separable_conv_macs_value"}),
        "no_pointwise_ignores_stride": (no_pointwise, {
            "separable_conv_output_shape", "separable_conv_matches_reference", "separable_conv_bn_relu",
            "separable_conv_params_value", "standard_conv_macs_value", "separable_conv_macs_value"}),
        "fixed_padding_no_depthwise_macs": (fixed_padding, {
            "separable_conv_output_shape", "separable_conv_matches_reference", "separable_conv_bn_relu",
            "separable_conv_macs_value"}),
        "relu_before_bn": (relu_before_bn, {"separable_conv_bn_relu"}),
        "eval_uses_batch_statistics": (batch_stats, {"separable_conv_bn_relu"}),
    }


# ---------------------------------------------------------------- one grading run for the module

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = ScratchCourse(tmp_path_factory.mktemp("hw3_course"))
    release = course.generate(HW)
    source = {name: read_notebook(path) for name, path in SOURCE.items()}
    wv = list(warmup_variants(source["warmup"]).items())
    dv = list(dws_variants(source["depthwise_separable"]).items())
    assert len(wv) == len(dv)
    submissions = {
        "solution": dict(source),
        "release": {name: read_notebook(release / f"{name}.ipynb") for name in NOTEBOOKS},
    }
    expected_zero = {}
    for i, ((wname, (wnb, wzero)), (dname, (dnb, dzero))) in enumerate(zip(wv, dv)):
        student = f"wrong{i}"
        submissions[student] = {"warmup": wnb, "depthwise_separable": dnb}
        expected_zero[student] = {"warmup": (wname, wzero), "depthwise_separable": (dname, dzero)}
    grades = course.autograde(HW, submissions)
    return {"course": course, "release": release, "source": source, "grades": grades, "expected_zero": expected_zero}


def _autograded_ids(name):
    return grade_ids(read_notebook(SOURCE[name]), kind="tests")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_scores_full_marks(graded, name):
    grades = graded["grades"]["solution"][name]
    ids = _autograded_ids(name)
    assert ids, "no autograded cells"
    for gid in ids:
        score, max_score = grades[gid]
        assert max_score > 0 and score == max_score, f"{name}/{gid}: the solution scored {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_scores_zero(graded, name):
    grades = graded["grades"]["release"][name]
    for gid in _autograded_ids(name):
        score, max_score = grades[gid]
        assert score == 0, f"{name}/{gid}: the unanswered release scored {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_wrong_answers_lose_exactly_their_points(graded, name):
    """Each typical mistake loses the points of the cells that test it, and only those."""
    for student, per_nb in graded["expected_zero"].items():
        variant, zero = per_nb[name]
        grades = graded["grades"][student][name]
        assert zero <= set(grades), f"{variant}: unknown grade_ids {zero - set(grades)}"
        for gid in _autograded_ids(name):
            score, max_score = grades[gid]
            if gid in zero:
                assert score == 0, f"{name} variant {variant!r}: {gid} scored {score}/{max_score}, expected 0"
            else:
                assert score == max_score, f"{name} variant {variant!r}: {gid} scored {score}/{max_score}, expected full"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_hides_solutions_and_hidden_tests(graded, name):
    source = graded["source"][name]
    release = read_notebook(graded["release"] / f"{name}.ipynb")
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME", "Model answer", "Rubric"):
        assert marker not in text, f"{marker!r} is in the release of {name}"
    # Lines that appear only inside solution / hidden / mark-scheme regions of the source must not reach the release.
    secret, public = set(), set()
    region = re.compile(r"(### BEGIN (SOLUTION|HIDDEN TESTS)|=== BEGIN MARK SCHEME ===)(.*?)(### END \2|=== END MARK SCHEME ===)",
                        re.DOTALL)
    for cell in source.cells:
        for m in region.finditer(cell.source):
            secret.update(line.strip() for line in m.group(3).splitlines() if len(line.strip()) > 20)
        public.update(line.strip() for line in region.sub("", cell.source).splitlines())
    leaked = [line for line in text.splitlines() if line.strip() in secret - public]
    assert not leaked, f"solution lines in the release of {name}: {leaked[:3]}"


@pytest.mark.slow
def test_release_has_no_judges(graded):
    assert not (graded["release"] / "judges").exists()
    assert not list(graded["release"].rglob("*.py"))
    assert (REPO / "release" / HW).is_dir() and not (REPO / "release" / HW / "judges").exists()


# ---------------------------------------------------------------- structure (no grading needed)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_hidden_test_cells_keep_only_their_description(name):
    """A hidden test's code lives in its judge alone: the notebook keeps the comment saying what is checked."""
    nb = read_notebook(SOURCE[name])
    for cell in nb.cells:
        assert "BEGIN HIDDEN TESTS" not in cell.source and "END HIDDEN TESTS" not in cell.source
    tests = [cell_by_grade_id(nb, gid) for gid in _autograded_ids(name)]
    assert all(cell.source.startswith("#") for cell in tests), "every test cell starts with a comment saying what it checks"

def _points_in_heading(line):
    m = re.match(r"^(#{1,6})\s.*\((\d+(?:\.\d+)?) points?\b", line)
    return (len(m.group(1)), float(m.group(2))) if m else None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_heading_points_add_up(name):
    """Every heading that announces points covers graded cells worth exactly that many points."""
    nb = read_notebook(SOURCE[name])
    open_headings = []  # [level, declared, counted, text]
    finished = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if re.match(r"^#{1,6}\s", line):
                    level = len(line) - len(line.lstrip("#"))
                    while open_headings and open_headings[-1][0] >= level:
                        finished.append(open_headings.pop())
                    found = _points_in_heading(line)
                    open_headings.append([level, found[1] if found else None, 0.0, line])
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("task"):
            for h in open_headings:
                h[2] += meta.get("points", 0)
    finished.extend(open_headings)
    declared = [h for h in finished if h[1] is not None]
    assert declared, "no heading announces points"
    for level, points, counted, text in declared:
        assert points == counted, f"{name}: {text!r} announces {points} points, its graded cells give {counted}"


def test_warmup_written_part_is_the_handouts_40_points():
    nb = read_notebook(SOURCE["warmup"])
    answers = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
               if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}  # the graded answer cells
    assert {gid: c.metadata["nbgrader"]["points"] for gid, c in answers.items()} == WARMUP_TASKS
    assert sum(WARMUP_TASKS.values()) == 40
    autograded = sum(cell_by_grade_id(nb, gid).metadata["nbgrader"]["points"] for gid in grade_ids(nb, "tests"))
    assert autograded == 15


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_task_cells_carry_mark_scheme_and_answer_cell(name):
    """A written question: a locked 0-point task cell (question, model answer and rubric in the mark scheme)
    followed by the manually graded answer cell that carries the rubric's points (model answer in source/)."""
    nb = read_notebook(SOURCE[name])
    cells = nb.cells
    tasks = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("task")]
    assert tasks
    for i in tasks:
        cell = cells[i]
        meta = cell.metadata["nbgrader"]
        assert cell.cell_type == "markdown" and meta.get("locked") and meta.get("points") == 0
        src = cell.source
        assert src.count("=== BEGIN MARK SCHEME ===") == 1 and src.count("=== END MARK SCHEME ===") == 1
        scheme = src.split("=== BEGIN MARK SCHEME ===")[1].split("=== END MARK SCHEME ===")[0]
        assert "Model answer" in scheme, f"{meta['grade_id']}: no model answer"
        answer = cells[i + 1]
        graded = answer.metadata.get("nbgrader", {})
        assert answer.cell_type == "markdown" and graded.get("grade") and graded.get("solution")
        assert graded["grade_id"] + "_question" == meta["grade_id"]
        rubric = re.search(r"Rubric \((\d+(?:\.\d+)?) points?\)", scheme)
        assert rubric and float(rubric.group(1)) == graded["points"], f"{meta['grade_id']}: rubric points differ from the answer's"
        assert " ".join(answer.source.split())[1:] in " ".join(scheme.split()), f"{graded['grade_id']}: model answers differ"


# ---------------------------------------------------------------- visible tests on unfilled answers

WARMUP_ANSWERS = ("standard_params", "standard_macs", "separable_params", "separable_macs", "conv_stack_receptive_fields",
                  "cheapest_7x7_stack", "naive_macs", "naive_out_channels", "reduced_macs", "reduced_out_channels")


@pytest.mark.parametrize("unfilled", [None, "todo", [1, 2, 3]])
def test_warmup_visible_tests_say_what_is_missing(unfilled):
    """Answers left as None (or of the wrong type), and functions that return them, fail each visible test with
    an AssertionError that names the answer and what it got, never a raw TypeError ("object of type 'NoneType'
    has no len()")."""
    import numpy as np
    import torch

    nb = read_notebook(SOURCE["warmup"])
    namespace = {}
    exec(cell_by_grade_id(nb, "imports").source, namespace)
    namespace.update({name: unfilled for name in WARMUP_ANSWERS}, np=np, torch=torch)
    namespace["conv_stack_params"] = lambda C: unfilled
    namespace["conv_stack_macs"] = lambda C, H, W: unfilled
    visible = [cell_by_grade_id(nb, gid) for gid in _autograded_ids("warmup")]
    visible = [c for c in visible if len(c.source.splitlines()) > 1]  # a hidden test keeps only its comment
    assert len(visible) == 12
    for cell in visible:
        gid = cell.metadata["nbgrader"]["grade_id"]
        with pytest.raises(AssertionError) as failure:
            exec(cell.source, dict(namespace))
        message = str(failure.value)
        named = [n for n in WARMUP_ANSWERS + ("conv_stack_params", "conv_stack_macs") if n in message]
        assert named, f"{gid}: the message does not name the answer: {message!r}"
        assert "None" in message or "got" in message or "it is a" in message, f"{gid}: {message!r}"


@pytest.mark.parametrize("unfilled", [None, [7, 7]])
def test_dws_visible_tests_say_what_is_missing(unfilled):
    """conv_macs returning None or a wrong pair fails its visible tests with an AssertionError saying so."""
    import numpy as np
    import torch

    nb = read_notebook(SOURCE["depthwise_separable"])
    namespace = {}
    exec(cell_by_grade_id(nb, "imports").source, namespace)
    namespace.update(np=np, torch=torch, conv_macs=lambda *args, **kwargs: unfilled)
    for gid in ("standard_conv_macs_value", "separable_conv_macs_value"):
        with pytest.raises(AssertionError) as failure:
            exec(cell_by_grade_id(nb, gid).source, dict(namespace))
        assert "conv_macs" in str(failure.value), (gid, str(failure.value))


def test_notebook_headers_say_how_points_relate_to_the_handout():
    """The handout's warm-up is 40 points with no split: the warm-up says how the kit splits them and that
    Part B is added; the coding notebooks say they are additions of the kit."""
    title = read_notebook(SOURCE["warmup"]).cells[0].source
    assert "handout's 40 points" in title and "addition of the kit" in title
    for name in ("depthwise_separable", "compression"):
        path = REPO / "source" / HW / f"{name}.ipynb"
        assert "kit's own addition" in " ".join(read_notebook(path).cells[0].source.split()), name


def test_hw3_text_writes_sizes_as_height_width_channels():
    """Feature-map sizes in hw3's text are H x W x C (PyTorch tensors are (N, C, H, W), said as such)."""
    texts = [c.source for p in (REPO / "source" / HW).glob("*.ipynb") for c in read_notebook(p).cells]
    texts += [p.read_text() for p in (REPO / "source" / HW / "judges").glob("*.py")]
    for text in texts:
        assert not re.search(r"\b\d+ x \d+ x \d+ input\b", text) or re.search(r"\b(\d+) x \1 x \d+ input\b", text), text[:200]
        assert "C x H x W" not in text and "256 x 32 x 32" not in text and "3 x 10 x 10" not in text
