"""hw3 compression notebook: the solution scores full marks, the release scores 0, typical mistakes lose their points.

One module-scoped ``eep590 autograde`` run grades every fake student; every test cell is decided by its judge in
``source/hw3/judges/compression.py`` (outside the student's kernel, on small tensors, layers and networks the judge
builds from inputs drawn afresh each run: nothing is trained at grading time). The students: the source notebook
(the solution), the generated release, and students who each plant typical mistakes (at most one per part of the
notebook, so that the points each mistake costs can be told apart), among them a mask that prunes
``int(s * N)`` entries instead of ``round(s * N)`` and a ``count_macs`` that leaves its hooks on the modules (with
a fresh counter per call, so its counts stay right). Also: every test cell has a judge and every judge a test
cell, no hidden test is left in the notebook, no judge reaches the release; the course's trained checkpoint ships
next to the notebook (so opening it trains nothing), fits the notebook's ``TinyMNISTNet`` and is accurate; the
text states the MNIST split the loaders make; the visible tests say what is missing when a function returns None.
"""
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbgrader_harness import (
    REPO,
    ScratchCourse,
    cell_by_grade_id,
    grade_ids,
    read_notebook,
    with_cell_source,
)

HW = "hw3"
NAME = "compression"
SOURCE = REPO / "source" / HW / f"{NAME}.ipynb"
JUDGES = REPO / "source" / HW / "judges" / f"{NAME}.py"
TOTAL_POINTS = 60
CHECKPOINT = "compression_cnn.pt"
SHIPPED = REPO / "source" / HW / CHECKPOINT       # the course's trained copy: the release starts with it
ARCHITECTURE = "TinyMNISTNet"

PART_PRUNING = ["magnitude_prune_mask_example", "magnitude_prune_mask_exact_sparsity", "magnitude_prune_mask_keeps_largest",
                "global_prune_masks_example", "global_prune_masks_matches_reference",
                "channel_prune_mask_whole_filters", "channel_prune_mask_l1", "channel_prune_mask_l2"]
PART_QUANT = ["qrange_8_bit", "qrange_other_bits", "scale_zero_point_symmetric_example", "scale_zero_point_symmetric",
              "scale_zero_point_asymmetric", "scale_zero_point_per_channel", "quantize_dequantize_error_bound",
              "quantize_matches_torch_per_tensor", "quantize_matches_torch_per_channel",
              "fake_quantize_ste_forward", "fake_quantize_ste_gradient"]
PART_LOWRANK = ["svd_factorize_linear_structure", "svd_factorize_linear_full_rank_exact",
                "svd_factorize_linear_eckart_young", "rank_for_energy_example", "rank_for_energy_matches_reference"]
PART_COSTS = ["model_size_bytes_float32", "model_size_bytes_bits_and_sparsity",
              "count_macs_linear", "count_macs_conv", "count_macs_sparse"]

# ------------------------------------------------------------------------------------- typical mistakes
# Each: (student, solution cell replaced, its new source, the test cells that must score 0).

PRUNE_BY_VALUE = '''
def magnitude_prune_mask(weight, sparsity):
    n = weight.numel()
    k = int(round(sparsity * n))
    flat = torch.ones(n, dtype=torch.bool)
    if k > 0:
        flat[torch.topk(weight.reshape(-1), k, largest=False).indices] = False   # by value, not |w|
    return flat.reshape(weight.shape)
'''

GLOBAL_PER_LAYER = '''
def global_prune_masks(weights, sparsity):
    masks = {}
    for name, w in weights.items():          # each tensor on its own: per-layer, not global
        n = w.numel()
        k = int(round(sparsity * n))
        flat = torch.ones(n, dtype=torch.bool)
        if k > 0:
            flat[torch.topk(w.abs().reshape(-1), k, largest=False).indices] = False
        masks[name] = flat.reshape(w.shape)
    return masks
'''

CHANNEL_SIGNED_SUM = '''
def channel_prune_mask(weight, sparsity, p=1):
    c_out = weight.shape[0]
    score = weight.reshape(c_out, -1).sum(1)   # signed sum instead of a norm
    m = int(round(sparsity * c_out))
    keep = torch.ones(c_out, dtype=torch.bool)
    if m > 0:
        keep[torch.topk(score, m, largest=False).indices] = False
    return keep.reshape([c_out] + [1] * (weight.ndim - 1)).expand(weight.shape).clone()
'''

CHANNEL_ALWAYS_L2 = '''
def channel_prune_mask(weight, sparsity, p=1):
    c_out = weight.shape[0]
    score = weight.reshape(c_out, -1).norm(dim=1)   # L2 whatever p says
    m = int(round(sparsity * c_out))
    keep = torch.ones(c_out, dtype=torch.bool)
    if m > 0:
        keep[torch.topk(score, m, largest=False).indices] = False
    return keep.reshape([c_out] + [1] * (weight.ndim - 1)).expand(weight.shape).clone()
'''

QRANGE_OFF_BY_ONE = '''
def qrange(num_bits, symmetric):
    if symmetric:
        return -(2 ** (num_bits - 1) - 1), 2 ** (num_bits - 1) - 1
    return 0, 2 ** num_bits                    # one too many levels
'''

ZERO_POINT_NOT_ROUNDED = '''
def compute_scale_zero_point(x, num_bits, symmetric, per_channel=False, axis=0):
    qmin, qmax = qrange(num_bits, symmetric)
    if per_channel:
        rows = x.movedim(axis, 0).reshape(x.shape[axis], -1)
        x_min, x_max = rows.min(dim=1).values, rows.max(dim=1).values
    else:
        x_min, x_max = x.min(), x.max()
    if symmetric:
        scale = torch.maximum(x_min.abs(), x_max.abs()) / qmax
        return scale, torch.zeros(scale.shape, dtype=torch.int64)
    x_min, x_max = torch.clamp(x_min, max=0), torch.clamp(x_max, min=0)
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, qmin - x_min / scale         # a float zero point, not rounded
'''

PER_TENSOR_WHEN_PER_CHANNEL = '''
def compute_scale_zero_point(x, num_bits, symmetric, per_channel=False, axis=0):
    qmin, qmax = qrange(num_bits, symmetric)
    x_min, x_max = x.min(), x.max()            # per_channel is ignored
    if symmetric:
        scale = torch.maximum(x_min.abs(), x_max.abs()) / qmax
        return scale, torch.zeros((), dtype=torch.int64)
    x_min, x_max = torch.clamp(x_min, max=0), torch.clamp(x_max, min=0)
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, torch.round(qmin - x_min / scale).to(torch.int64)
'''

NO_STE = '''
def fake_quantize_ste(x, scale, zero_point, num_bits, symmetric, axis=0):
    # no straight-through estimator: the rounding blocks the gradient
    return dequantize(quantize(x, scale, zero_point, num_bits, symmetric, axis), scale, zero_point, axis)
'''

SVD_MISSING_S = '''
def svd_factorize_linear(layer, rank):
    U, S, Vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(Vh[:rank])            # the singular values are forgotten
        second.weight.copy_(U[:, :rank])
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)
'''

ENERGY_UNSQUARED = '''
def rank_for_energy(singular_values, energy):
    s = torch.as_tensor(singular_values, dtype=torch.float64)   # not squared
    kept = torch.cumsum(s, dim=0) / s.sum()
    return min(int((kept < energy).sum()) + 1, len(s))
'''

MACS_WITHOUT_POSITIONS = '''
def count_macs(model, input_shape, count_zeros=True):
    total = 0
    for m in model.modules():                  # parameters, not multiply-adds: output positions forgotten
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            total += m.weight.numel() if count_zeros else int((m.weight != 0).sum())
    return total
'''

SIZE_IGNORES_BITS = '''
def model_size_bytes(model, weight_bits=32, sparse=False):
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            total += int((m.weight != 0).sum()) if sparse else m.weight.numel()
            if m.bias is not None:
                total += m.bias.numel()
    return 4 * total                           # always 4 bytes per number
'''

PRUNE_FLOOR = '''
def magnitude_prune_mask(weight, sparsity):
    n = weight.numel()
    k = int(sparsity * n)                      # floor, not round(sparsity * n)
    flat = torch.ones(n, dtype=torch.bool)
    if k > 0:
        flat[torch.topk(weight.detach().abs().reshape(-1), k, largest=False).indices] = False
    return flat.reshape(weight.shape)
'''

MACS_HOOKS_LEFT = '''
def count_macs(model, input_shape, count_zeros=True):
    counter = [0]                              # a fresh counter per call: the count is right every time ...

    def hook(module, inputs, output):
        w = module.weight
        used = w.numel() if count_zeros else int((w != 0).sum())
        positions = output.shape[-2] * output.shape[-1] if isinstance(module, nn.Conv2d) else output.numel() // output.shape[-1]
        counter[0] += positions * used

    for m in model.modules():                  # ... but the hooks stay on the modules after the call
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    return int(counter[0])
'''

MISTAKES = {
    # pruning
    "prune_by_value": ("wrong_a", "magnitude_prune_mask", PRUNE_BY_VALUE,
                       {"magnitude_prune_mask_example", "magnitude_prune_mask_keeps_largest"}),
    "global_per_layer": ("wrong_b", "global_prune_masks", GLOBAL_PER_LAYER,
                         {"global_prune_masks_example", "global_prune_masks_matches_reference"}),
    "channel_signed_sum": ("wrong_c", "channel_prune_mask", CHANNEL_SIGNED_SUM,
                           {"channel_prune_mask_l1", "channel_prune_mask_l2"}),
    "channel_always_l2": ("wrong_d", "channel_prune_mask", CHANNEL_ALWAYS_L2, {"channel_prune_mask_l1"}),
    # quantization
    "qrange_off_by_one": ("wrong_a", "qrange", QRANGE_OFF_BY_ONE, {
        "qrange_8_bit", "qrange_other_bits",
        # the asymmetric scale divides by 2^k: wrong scales and zero points, integers up to 2^k
        "scale_zero_point_asymmetric", "scale_zero_point_per_channel", "quantize_dequantize_error_bound",
        # quantize clamps asymmetric values to 2^k instead of 2^k - 1
        "quantize_matches_torch_per_tensor", "quantize_matches_torch_per_channel", "fake_quantize_ste_forward",
    }),  # symmetric scales and the straight-through gradient are unaffected
    "zero_point_not_rounded": ("wrong_b", "compute_scale_zero_point", ZERO_POINT_NOT_ROUNDED, {
        "scale_zero_point_asymmetric", "scale_zero_point_per_channel",
        # a fractional zero point moves the round trip off the grid by up to a whole step
        "quantize_dequantize_error_bound",
    }),
    "per_tensor_when_per_channel": ("wrong_c", "compute_scale_zero_point", PER_TENSOR_WHEN_PER_CHANNEL,
                                    {"scale_zero_point_per_channel"}),
    "no_ste": ("wrong_d", "fake_quantize_ste", NO_STE, {"fake_quantize_ste_gradient"}),
    # low rank
    "energy_unsquared": ("wrong_a", "rank_for_energy", ENERGY_UNSQUARED,
                         {"rank_for_energy_example", "rank_for_energy_matches_reference"}),
    "svd_missing_s": ("wrong_b", "svd_factorize_linear", SVD_MISSING_S,
                      {"svd_factorize_linear_full_rank_exact", "svd_factorize_linear_eckart_young"}),
    # costs
    "macs_without_positions": ("wrong_a", "count_macs", MACS_WITHOUT_POSITIONS, {"count_macs_conv", "count_macs_sparse"}),
    "size_ignores_bits": ("wrong_b", "model_size_bytes", SIZE_IGNORES_BITS, {"model_size_bytes_bits_and_sparsity"}),
    # the two gaps of issue 11: both passed the notebook's own hidden tests (sparsities with a whole s * N; a
    # "called twice" check that a per-call counter satisfies)
    "prune_floor": ("wrong_e", "magnitude_prune_mask", PRUNE_FLOOR, {"magnitude_prune_mask_exact_sparsity"}),
    "macs_hooks_left": ("wrong_e", "count_macs", MACS_HOOKS_LEFT, {"count_macs_conv"}),
}

# What the feedback of a mistake says (the judge's message, as the student reads it).
MESSAGES = {
    "prune_floor": ("magnitude_prune_mask_exact_sparsity", "exactly round(sparsity x N)"),
    "macs_hooks_left": ("count_macs_conv", "must remove every hook it registers"),
}


def _students():
    return sorted({student for student, *_ in MISTAKES.values()})


def _mistakes_of(student):
    return [name for name, (s, *_) in MISTAKES.items() if s == student]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source_nb():
    return read_notebook(SOURCE)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, source_nb):
    """Grades of every fake student, from one scratch course holding only this notebook of hw3."""
    course = ScratchCourse(tmp_path_factory.mktemp("hw3_compression"))
    for other in (course.root / "source" / HW).iterdir():   # the other hw3 notebooks are other tests' business
        if other.name not in (f"{NAME}.ipynb", "judges", CHECKPOINT):
            shutil.rmtree(other) if other.is_dir() else other.unlink()
    release = course.generate(HW) / f"{NAME}.ipynb"
    submissions = {"solution": {NAME: source_nb}, "release": {NAME: read_notebook(release)}}
    for student in _students():
        nb = source_nb
        for mistake in _mistakes_of(student):
            _, cell, source, _ = MISTAKES[mistake]
            nb = with_cell_source(nb, cell, source.strip("\n"))
        submissions[student] = {NAME: nb}
    grades = course.autograde(HW, submissions)
    return course, {student: grades[student][NAME] for student in grades}


def _points(nb):
    return {cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]["points"]
            for cell in nb.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade")}


def _lost(grades):
    return {gid for gid, (score, max_score) in grades.items() if score != max_score}


# ------------------------------------------------------------------------------------------ the notebook


def test_source_is_valid_without_outputs(source_nb):
    nbformat.validate(source_nb)
    assert (source_nb.nbformat, source_nb.nbformat_minor) == (4, 5)
    for cell in source_nb.cells:
        assert cell.get("id"), "every cell has an id"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.id} has stored outputs"
    # The first code cell is the set-up check (tests/notebook_setup.py, tests/test_setup_check.py); the imports follow.
    setup, imports = [c for c in source_nb.cells if c.cell_type == "code"][:2]
    assert setup.metadata["nbgrader"]["grade_id"] == "setup_check"
    assert "datasets=['mnist'], files=['compression_cnn.pt']" in setup.source
    for line in ("import numpy as np", "import torch", "from eep590_utils import *"):
        assert line in imports.source


def test_points_in_headings_add_up(source_nb):
    """Every '(N points)' heading equals the points of the graded cells under it; the total is 60."""
    points = _points(source_nb)
    assert sum(points.values()) == TOTAL_POINTS
    headings = []  # (cell index, level, points)
    for i, cell in enumerate(source_nb.cells):
        if cell.cell_type == "markdown":
            match = re.match(r"^(#+) .*\((\d+) points\)", cell.source)
            if match:
                headings.append((i, len(match.group(1)), int(match.group(2))))
    assert headings[0][1] == 1 and headings[0][2] == TOTAL_POINTS
    assert len(headings) == 1 + 4 + 11  # title, 4 parts, 11 questions
    for n, (start, level, claimed) in enumerate(headings):
        end = next((i for i, lvl, _ in headings[n + 1:] if lvl <= level), len(source_nb.cells))
        under = sum(points.get(c.get("metadata", {}).get("nbgrader", {}).get("grade_id"), 0)
                    for c in source_nb.cells[start:end])
        assert under == claimed, f"heading {source_nb.cells[start].source.splitlines()[0]!r} claims {claimed}, cells give {under}"


def test_every_test_cell_is_in_a_part(source_nb):
    assert sorted(grade_ids(source_nb)) == sorted(PART_PRUNING + PART_QUANT + PART_LOWRANK + PART_COSTS)


def test_training_is_guarded(source_nb):
    """Training and the experiments that use the trained model run only when not grading."""
    for cell in source_nb.cells:
        if cell.cell_type == "code" and re.search(r"(?<![.\w])(train|accuracy|mnist_loaders|load_checkpoint)\(", cell.source):
            assert "if not GRADING:" in cell.source, f"cell {cell.id} trains or evaluates outside the GRADING guard"
    imports = cell_by_grade_id(source_nb, "imports").source
    assert 'GRADING = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")' in imports


# ----------------------------------------------------------------------------------------------- grading


@pytest.mark.slow
def test_solution_scores_full_marks(graded, source_nb):
    _, grades = graded
    sol = grades["solution"]
    assert set(sol) == set(_points(source_nb))
    assert {gid: s for gid, (s, m) in sol.items() if s != m} == {}
    assert sum(s for s, _ in sol.values()) == TOTAL_POINTS


@pytest.mark.slow
def test_solution_runs_cleanly_and_does_not_train_when_graded(graded):
    course, _ = graded
    nb = course.autograded_notebook(HW, "solution", NAME)
    for cell in nb.cells:
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"cell {cell.id} raised {errors[0].ename} while grading"
            stderr = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not stderr, f"cell {cell.id} wrote to stderr while grading: {stderr[0].text[:200]}"
    folder = course.root / "autograded" / "solution" / HW
    # nbgrader puts the course's files (the shipped checkpoint) next to the graded notebook: grading must not
    # have trained and saved over it, nor written another checkpoint
    assert [p.name for p in folder.glob("*.pt")] in ([], [CHECKPOINT]), "grading wrote a checkpoint"
    if (folder / CHECKPOINT).exists():
        assert (folder / CHECKPOINT).read_bytes() == SHIPPED.read_bytes(), "grading trained the CNN and saved a checkpoint"


@pytest.mark.slow
def test_release_scores_zero(graded, source_nb):
    _, grades = graded
    rel = grades["release"]
    assert set(rel) == set(_points(source_nb))
    assert {gid: s for gid, (s, _) in rel.items() if s != 0} == {}


@pytest.mark.slow
def test_release_given_cells_run(graded):
    """In the release, the given cells (imports, model, helpers, guarded experiments) run without errors."""
    course, _ = graded
    nb = course.autograded_notebook(HW, "release", NAME)
    checked = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        given = meta.get("locked") and not meta.get("grade") and not meta.get("solution")
        if cell.cell_type == "code" and (given or "if not GRADING:" in cell.source):
            checked += 1
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"release cell {cell.id} raised {errors[0].ename}"
    assert checked >= 8
    stubs = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert len(stubs) == 11 and all("raise NotImplementedError()" in c.source for c in stubs)


@pytest.mark.slow
@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistake_loses_its_points(graded, source_nb, mistake):
    _, grades = graded
    student, _, _, expected = MISTAKES[mistake]
    got = grades[student]
    lost = _lost(got)
    assert expected <= lost, f"{mistake}: these tests should fail but pass: {sorted(expected - lost)}"
    assert all(got[gid][0] == 0 for gid in expected), f"{mistake}: partial credit where none is due"
    # the student's other mistakes lie in other parts: together they lose exactly the union, nothing more
    union = set().union(*(MISTAKES[m][3] for m in _mistakes_of(student)))
    assert lost == union, f"{student}: unexpected losses {sorted(lost - union)}"
    points = _points(source_nb)
    assert sum(points[g] for g in expected) == sum(got[g][1] - got[g][0] for g in expected)


@pytest.mark.slow
@pytest.mark.parametrize("mistake", sorted(MESSAGES))
def test_mistake_feedback_says_what_is_wrong(graded, mistake):
    course, _ = graded
    student = MISTAKES[mistake][0]
    grade_id, words = MESSAGES[mistake]
    cell = cell_by_grade_id(course.autograded_notebook(HW, student, NAME), grade_id)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and words in errors[0].evalue, f"{mistake}: the feedback of {grade_id} is {cell.outputs}"


@pytest.mark.slow
def test_release_has_no_judges(graded):
    course, _ = graded
    assert not (course.root / "release" / HW / "judges").exists()
    assert not list((course.root / "release" / HW).rglob("*.py"))
    assert not (REPO / "release" / HW / "judges").exists()


def test_hidden_test_cells_keep_only_their_description(source_nb):
    """A hidden test's code lives in its judge alone: the cell keeps the comment saying what is checked."""
    for cell in source_nb.cells:
        assert "BEGIN HIDDEN TESTS" not in cell.source and "END HIDDEN TESTS" not in cell.source
    hidden = [cell for cell in source_nb.cells if cell.cell_type == "code" and cell.source.startswith("# Hidden tests:")]
    assert len(hidden) >= 10
    for cell in hidden:
        assert all(line.startswith("#") for line in cell.source.splitlines()), cell.source


def test_judges_train_nothing_and_read_no_files():
    """Nothing is trained at grading time: the judges build their own small inputs, layers and networks."""
    text = JUDGES.read_text()
    for word in ("read_file", "train(", "mnist_loaders", "load_checkpoint", "manual_seed"):
        assert word not in text, f"the compression judges use {word!r}"


def test_mistakes_of_one_student_lie_in_different_parts():
    """A student's mistakes never share a part, so each part's losses belong to one mistake."""
    for student in _students():
        parts = []
        for mistake in _mistakes_of(student):
            expected = MISTAKES[mistake][3]
            part = [p for p in (PART_PRUNING, PART_QUANT, PART_LOWRANK, PART_COSTS) if expected <= set(p)]
            assert len(part) == 1, f"{mistake} loses points in more than one part"
            parts.append(id(part[0]))
        assert len(parts) == len(set(parts)), f"{student} has two mistakes in one part"


# ------------------------------------------------------------------------ the shipped checkpoint and the text


def _model_class(source_nb):
    """The notebook's model class, from its locked model cell, run in a fresh namespace."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(cell_by_grade_id(source_nb, "model_definition").source, namespace)
    return namespace[ARCHITECTURE]


def test_model_has_its_own_name(source_nb):
    """hw2's cnn_training has a different SmallCNN: hw3's network is TinyMNISTNet everywhere in hw3."""
    assert f"class {ARCHITECTURE}(nn.Module)" in cell_by_grade_id(source_nb, "model_definition").source
    texts = [JUDGES.read_text()]
    for path in (REPO / "source" / HW).glob("*.ipynb"):
        texts += [c.source for c in read_notebook(path).cells]
    assert not [t for t in texts if "SmallCNN" in t]


def test_shipped_checkpoint_loads_into_the_notebooks_model(source_nb):
    """The course's checkpoint ships next to the notebook and in the release (opening the notebook trains
    nothing); it holds weights only, of the notebook's TinyMNISTNet, and says what it was trained on."""
    import io

    import torch

    from eep590_utils import load_checkpoint

    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 400_000, "the shipped checkpoint is missing or too big"
    released = REPO / "release" / HW / CHECKPOINT
    assert released.is_file() and released.read_bytes() == SHIPPED.read_bytes(), "run `eep590 release hw3`"
    payload = torch.load(io.BytesIO(SHIPPED.read_bytes()), weights_only=True)
    assert payload["metadata"]["architecture"] == ARCHITECTURE
    assert payload["metadata"]["train_images"] == 7200 and payload["metadata"]["epochs"] == 4
    model, meta = load_checkpoint(SHIPPED, _model_class(source_nb)(), architecture=ARCHITECTURE)
    assert meta["val_acc"] > 0.93


def test_shipped_checkpoint_is_accurate_on_the_offline_test_split(source_nb):
    """On the 2,000 test images of the offline split (never seen in training) it classifies well."""
    import warnings

    from eep590_utils import accuracy, load_checkpoint
    from eep590_utils.data import mnist_loaders

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_loader, val_loader, test_loader = mnist_loaders(batch_size=500, seed=0)
    except Exception as error:  # no MNIST here
        pytest.skip(f"MNIST not available: {error}")
    if len(train_loader.dataset) != 7200:
        pytest.skip("the full MNIST is here: the shipped checkpoint is retrained by the notebook on it")
    assert any("split" in str(w.message) for w in caught), "the offline split warns"
    model, _ = load_checkpoint(SHIPPED, _model_class(source_nb)(), architecture=ARCHITECTURE)
    assert accuracy(model.eval(), test_loader, device="cpu") > 0.93


def test_text_states_the_split_the_loaders_make(source_nb):
    """The numbers the notebook states are those mnist_loaders gives with the offline copy (and with the full set)."""
    text = " ".join(next(c.source for c in source_nb.cells if c.id == "model_text").split())
    for numbers in ("10,000 test images", "8,000 training and 2,000 test images", "7,200 training, 800 validation and 2,000 test",
                    "54,000 training, 6,000 validation and the official 10,000 test"):
        assert numbers in text, numbers
    try:
        import warnings

        from eep590_utils.data import mnist_loaders

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaders = mnist_loaders(batch_size=500, seed=0)
    except Exception as error:
        pytest.skip(f"MNIST not available: {error}")
    sizes = tuple(len(loader.dataset) for loader in loaders)
    assert sizes in ((7200, 800, 2000), (54000, 6000, 10000))


def test_training_only_when_needed(source_nb):
    """The notebook loads the checkpoint it ships with; it trains only without one, on request, or when the
    checkpoint was trained on another split than the student's data."""
    cell = next(c for c in source_nb.cells if c.id == "train_model").source
    assert "RETRAIN = False" in cell and "os.path.exists(CHECKPOINT) and not RETRAIN" in cell
    assert 'architecture="TinyMNISTNet"' in cell and "train_images=len(train_loader.dataset)" in cell


def test_summary_says_what_the_latency_shows(source_nb):
    text = next(c.source for c in source_nb.cells if c.id == "summary_text")
    assert "faster on any hardware" not in text
    assert "smaller" in text and "dominate" in text and "overheads" in text


def test_visible_tests_say_what_is_missing_when_functions_return_none(source_nb):
    """A student's function that returns None (or an unfilled answer) fails each visible test with an
    AssertionError naming what is wrong, never a raw TypeError or AttributeError."""
    import numpy as np
    import torch

    namespace = {}
    exec(cell_by_grade_id(source_nb, "imports").source, namespace)
    exec(cell_by_grade_id(source_nb, "helpers").source, namespace)
    functions = ["magnitude_prune_mask", "global_prune_masks", "channel_prune_mask", "qrange", "compute_scale_zero_point",
                 "quantize", "dequantize", "fake_quantize_ste", "svd_factorize_linear", "rank_for_energy",
                 "model_size_bytes", "count_macs"]
    for name in functions:
        namespace[name] = lambda *args, **kwargs: None
    visible = [c for c in source_nb.cells if c.metadata.get("nbgrader", {}).get("grade")
               and not c.source.startswith("# Hidden tests:")]
    assert len(visible) >= 12
    for cell in visible:
        with pytest.raises(AssertionError) as failure:
            exec(cell.source, dict(namespace, np=np, torch=torch))
        assert "None" in str(failure.value) or "got" in str(failure.value), (cell.metadata["nbgrader"]["grade_id"], failure.value)
