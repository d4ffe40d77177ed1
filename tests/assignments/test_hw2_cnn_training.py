"""hw2 cnn_training.ipynb: SmallCNN tests, checkpoint grading (never training) and its failure modes.

Graded as a class is (``ScratchCourse.autograde``: ``eep590 autograde``, every test cell decided by its judge in
``source/hw2/judges/cnn_training.py``, outside the student's kernel; the checkpoints are read by the judge and
their models evaluated there as TorchScript graphs). One module-scoped fixture runs the source notebook once in
quick mode (EEP590_QUICK=1: tiny subsets on the CPU, as a student's smoke test would) and grades these
submissions in one course:

- solution: the source notebook with the instructor checkpoints of tests/assets/hw2 beside it,
- release: the generated student version, no checkpoints,
- quick: the source notebook with the checkpoints its own quick run just wrote (barely trained),
- wrong_arch: the model class changed after saving (stem_channels) so the CIFAR-10 checkpoint no longer fits,
  an MNIST checkpoint naming a class the notebook does not define, and a SmallCNN whose dropout stays on in
  eval mode,
- degraded: the instructor CIFAR-10 model with three classes switched off (partial credit) and a truncated
  (corrupt) mnist_model.pt,
- swapped_export: a notebook that patches ``torch.jit.trace`` to shift the weights of what the grader exports
  (a model other than the saved one): the CIFAR-10 cell gets 0, nothing else changes,
- batch_stats: a SmallCNN whose batch normalization keeps no running statistics (eval mode normalizes with the
  statistics of the batch), with an MNIST checkpoint of that architecture: it loses the behaviour cell only,
- one student per row of STUDENTS: the planted mistakes of MISTAKES (Question 6, transfer learning) with the
  instructor checkpoints: each loses exactly its cells.
The release, with no checkpoints at all, shows what a missing checkpoint gets.
"""
import copy
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch
from nbgrader_harness import (
    REPO,
    ScratchCourse,
    cell_by_grade_id,
    grade_ids,
    read_notebook,
    replace_in_cell,
    with_cell_source,
)

from eep590_utils.grading.judge import load_judges

pytestmark = pytest.mark.slow

HW, NAME = "hw2", "cnn_training"
SOURCE = REPO / "source" / HW / f"{NAME}.ipynb"
JUDGES = REPO / "source" / HW / "judges" / f"{NAME}.py"
ASSETS = REPO / "tests" / "assets" / HW
CIFAR_CELL, MNIST_CELL = "cifar10_model_accuracy", "mnist_model_accuracy"
CIFAR_FLOOR, CIFAR_FULL, CIFAR_POINTS = 0.40, 0.70, 20
DEAD_CLASSES = (0, 1, 2)  # classes the degraded model can never predict
BEHAVIOUR = "small_cnn_train_eval_behaviour"
FEATURES = REPO / "source" / HW / "cifar_features.pt"  # the pretrained CNN of Question 6, released beside the notebook
INPUT_SHAPE, INPUT_VALUES = "mnist_to_cifar_input_shape_and_border", "mnist_to_cifar_input_values"
FREEZE = "freeze_features_only_head_trains"

# Planted mistakes: {name: ({solution cell grade_id: (text, replacement)}, the test cells it must lose)}.
MISTAKES = {
    "freezes_the_head_too": ({"freeze_features": ("for parameter in model.head.parameters():\n"
                                                  "        parameter.requires_grad_(True)",
                                                  "for parameter in model.head.parameters():\n"
                                                  "        parameter.requires_grad_(False)")}, {FREEZE}),
    "freezes_conv_weights_only": ({"freeze_features": (
        "    for parameter in model.features.parameters():\n        parameter.requires_grad_(False)",
        "    for layer in model.features:\n        if isinstance(layer, nn.Conv2d):\n"
        "            layer.weight.requires_grad_(False)")}, {FREEZE}),
    "module_attribute_instead_of_parameters": ({"freeze_features": (
        "    for parameter in model.features.parameters():\n        parameter.requires_grad_(False)",
        "    model.features.requires_grad = False  # an attribute of the module: no parameter changes")}, {FREEZE}),
    "mnist_normalization_not_undone": ({"mnist_to_cifar_input": ("pixels = x * MNIST_STD[0] + MNIST_MEAN[0]",
                                                                 "pixels = x")}, {INPUT_VALUES}),
    "padded_normalized_and_not_renormalized": ({"mnist_to_cifar_input": (
        "return (pixels - mean) / std", "return F.pad(x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)")},
        {INPUT_SHAPE, INPUT_VALUES}),
    "resized_instead_of_padded": ({"mnist_to_cifar_input": (
        "F.pad(pixels, (2, 2, 2, 2))", "F.interpolate(pixels, size=(32, 32), mode='bilinear')")},
        {INPUT_SHAPE, INPUT_VALUES}),
}
# Mistakes in different cells share a student (each run costs seconds): the student loses the union of their cells.
STUDENTS = {
    "transfer_wrong_1": ["freezes_the_head_too", "mnist_normalization_not_undone"],
    "transfer_wrong_2": ["freezes_conv_weights_only", "padded_normalized_and_not_renormalized"],
    "transfer_wrong_3": ["module_attribute_instead_of_parameters", "resized_instead_of_padded"],
}
SWAP_EXPORT = """

_real_trace = torch.jit.trace
def _trace(model, *args, **kwargs):  # the model the grader exports is not the one in the file
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    return _real_trace(model, *args, **kwargs)
torch.jit.trace = _trace
"""


class CheckpointCourse(ScratchCourse):
    """A scratch course whose submissions carry files next to the notebook (the checkpoints)."""

    def autograde(self, hw, submissions, workers=2):
        """submissions: {student: (notebook, {file name: bytes})} -> {student: {grade_id: (score, max)}}."""
        from eep590_utils.grading.autograde import autograde
        from eep590_utils.grading.course import Course
        from eep590_utils.grading.sandbox import bwrap_path

        self.generate(hw)
        for student, (nb, files) in submissions.items():
            folder = self.root / "submitted" / student / hw
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            nbformat.write(nb, str(folder / f"{NAME}.ipynb"))
            for file_name, data in files.items():
                (folder / file_name).write_bytes(data)
        course = Course(self.root, db_url="sqlite:///" + str(self.root / "gradebook.db"))
        self.records = autograde(course, hw, students=sorted(submissions), workers=workers, echo=lambda *_: None,
                                 sandbox=bwrap_path() is not None)
        grades = {}
        with course.gradebook() as gb:
            for student in submissions:
                sub = gb.find_submission_notebook(NAME, hw, student)
                grades[student] = {g.name: (g.score, g.max_score) for g in sub.grades}
        return grades


def _checkpoint(state_dict, **metadata):
    """Bytes of a save_checkpoint file (written through the course package, as students do)."""
    import tempfile

    from eep590_utils import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(state_dict, Path(tmp) / "model.pt", **metadata)
        return path.read_bytes()


def _notebook_namespace():
    """The source notebook's setup-free model code (FastCifarNet, SmallCNN, ...) run in a fresh namespace."""
    nb = read_notebook(SOURCE)
    namespace = {}
    exec("import numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for grade_id in ("small_cnn", "cifar10_model_definition", "transfer_model"):
        exec(cell_by_grade_id(nb, grade_id).source, namespace)
    return namespace


def _cifar10_grading_accuracy(state_dict, metadata):
    """Accuracy of a FastCifarNet checkpoint on the grader's 2,000 CIFAR-10 test images, computed here."""
    model = _notebook_namespace()[metadata["architecture"]](**metadata["model_kwargs"])
    model.load_state_dict(state_dict)
    return _cifar10_test_accuracy(model.float())


def _cifar10_test_accuracy(model):
    """Accuracy of ``model`` (in eval mode) on the grader's 2,000 CIFAR-10 test images."""
    from eep590_utils import CIFAR10_MEAN, CIFAR10_STD, load_cifar10

    model.eval()
    _, _, images, labels = load_cifar10()
    x = torch.from_numpy(images[:2000]).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    with torch.no_grad():
        predictions = torch.cat([model(chunk).argmax(1) for chunk in x.split(500)])
    return float((predictions.numpy() == labels[:2000]).mean())


def _with_mistakes(nb, mistakes):
    for mistake in mistakes:
        for grade_id, (text, replacement) in MISTAKES[mistake][0].items():
            nb = replace_in_cell(nb, grade_id, text, replacement)
    return nb


def _run_quick(nb, workdir):
    """Execute nb in workdir with EEP590_QUICK=1 (not grading): it trains on tiny subsets and saves checkpoints."""
    from nbclient import NotebookClient

    shutil.copy(FEATURES, workdir / FEATURES.name)  # released next to the notebook
    nb = copy.deepcopy(nb)
    saved = {key: os.environ.get(key) for key in ("EEP590_QUICK", "NBGRADER_EXECUTION")}
    os.environ["EEP590_QUICK"] = "1"
    os.environ.pop("NBGRADER_EXECUTION", None)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def _output_text(nb, grade_id):
    cell = cell_by_grade_id(nb, grade_id)
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
        parts.append(str(output.get("evalue", "")))
    return "\n".join(parts)


def _lost(grades):
    """The autograded cells (the written answers wait for a grader) that did not get full marks."""
    tests = set(grade_ids(read_notebook(SOURCE)))
    return {gid for gid, (score, max_score) in grades.items() if gid in tests and score != max_score}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    source = read_notebook(SOURCE)
    cifar_bytes, mnist_bytes = (ASSETS / "cifar10_model.pt").read_bytes(), (ASSETS / "mnist_model.pt").read_bytes()

    quick_dir = tmp_path_factory.mktemp("quick_run")
    quick_nb = _run_quick(source, quick_dir)
    quick_files = {name: (quick_dir / name).read_bytes() for name in ("cifar10_model.pt", "mnist_model.pt")
                   if (quick_dir / name).is_file()}

    from eep590_utils import load_checkpoint

    cifar_state, cifar_meta = load_checkpoint(ASSETS / "cifar10_model.pt")
    mnist_state, mnist_meta = load_checkpoint(ASSETS / "mnist_model.pt")
    degraded_state = {k: v.clone() for k, v in cifar_state.items()}
    for k in DEAD_CLASSES:  # features after the global max-pool of GELUs are >= -0.17: these logits sink far below
        degraded_state["head.weight"][k] = -20.0
    degraded_bytes = _checkpoint(degraded_state, **{k: v for k, v in cifar_meta.items()
                                                    if k in ("architecture", "model_kwargs")})
    alien_mnist = _checkpoint(mnist_state, architecture="ResNet18", model_kwargs={})
    no_running_stats_mnist = _checkpoint({k: v for k, v in mnist_state.items()
                                          if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))},
                                         architecture="SmallCNN", model_kwargs=mnist_meta["model_kwargs"])

    definition = cell_by_grade_id(source, "cifar10_model_definition").source
    assert "stem_channels=24" in definition
    wrong = with_cell_source(source, "cifar10_model_definition", definition.replace("stem_channels=24", "stem_channels=12"))
    small_cnn = cell_by_grade_id(source, "small_cnn").source
    assert "self.dropout(self.features(x).flatten(1))" in small_cnn
    always_dropout = small_cnn.replace("self.dropout(self.features(x).flatten(1))",
                                       "F.dropout(self.features(x).flatten(1), self.dropout.p, training=True)")
    wrong = with_cell_source(wrong, "small_cnn", always_dropout)
    assert "nn.BatchNorm2d(c_out)" in small_cnn
    batch_stats = with_cell_source(source, "small_cnn",
                                   small_cnn.replace("nn.BatchNorm2d(c_out)", "nn.BatchNorm2d(c_out, track_running_stats=False)"))

    swapped = with_cell_source(source, "cifar10_model_definition", definition + SWAP_EXPORT)

    course = CheckpointCourse(tmp_path_factory.mktemp("course"))
    for other in (course.root / "source" / HW).iterdir():  # the other hw2 notebooks are test_hw2_exercises' business
        if other.suffix == ".ipynb" and other.name != f"{NAME}.ipynb":
            other.unlink()
    release = read_notebook(course.generate(HW) / f"{NAME}.ipynb")
    submissions = {
        "solution": (source, {"cifar10_model.pt": cifar_bytes, "mnist_model.pt": mnist_bytes}),
        "release": (release, {}),
        "quick": (source, quick_files),
        "wrong_arch": (wrong, {"cifar10_model.pt": cifar_bytes, "mnist_model.pt": alien_mnist}),
        "degraded": (source, {"cifar10_model.pt": degraded_bytes, "mnist_model.pt": mnist_bytes[: len(mnist_bytes) // 2]}),
        "swapped_export": (swapped, {"cifar10_model.pt": cifar_bytes, "mnist_model.pt": mnist_bytes}),
        "batch_stats": (batch_stats, {"cifar10_model.pt": cifar_bytes, "mnist_model.pt": no_running_stats_mnist}),
    }
    for student, mistakes in STUDENTS.items():
        submissions[student] = (_with_mistakes(source, mistakes), {"cifar10_model.pt": cifar_bytes,
                                                                   "mnist_model.pt": mnist_bytes})
    grades = course.autograde(HW, submissions)
    autograded = {student: course.autograded_notebook(HW, student, NAME) for student in submissions}
    return dict(grades=grades, autograded=autograded, course=course, source=source, quick_nb=quick_nb,
                quick_files=quick_files, cifar_state=cifar_state, cifar_meta=cifar_meta,
                degraded_state=degraded_state, cifar_bytes=cifar_bytes, mnist_bytes=mnist_bytes)


# ----------------------------------------------------------------------------------------------------------
# The notebook and its judges


def test_every_test_cell_has_a_judge_and_every_judge_a_test_cell():
    tests = set(grade_ids(read_notebook(SOURCE)))
    judges = set(load_judges(JUDGES))
    assert {CIFAR_CELL, MNIST_CELL, BEHAVIOUR} <= tests
    assert sorted(tests - judges) == [], "test cells without a judge"
    assert sorted(judges - tests) == [], "judges of no test cell"


def test_hidden_checks_and_judges_stay_out_of_the_notebooks():
    source = read_notebook(SOURCE)
    hidden = cell_by_grade_id(source, BEHAVIOUR).source
    code = [line for line in hidden.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code == [] and "HIDDEN TESTS" not in hidden
    committed = REPO / "release" / HW
    assert not (committed / "judges").exists() and not list(committed.rglob("*.py"))
    release = (committed / f"{NAME}.ipynb").read_text()
    for secret in ("_eep590_export", "torch.jit", "net_h", "track_running_stats", "_cifar_input_reference",
                   "_PARAMETER_FLAGS", "pixels = x * MNIST_STD[0] + MNIST_MEAN[0]"):
        assert secret not in release, secret
    for nb in (source, read_notebook(committed / f"{NAME}.ipynb")):
        assert not any("eep590_utils.train " in c.source or "eep590_utils.train\n" in c.source
                       or "from eep590_utils.train import" in c.source for c in nb.cells)


# ----------------------------------------------------------------------------------------------------------
# Grading


def test_solution_with_instructor_checkpoints_scores_full_marks(graded):
    grades = graded["grades"]["solution"]
    tests = grade_ids(graded["source"])
    assert {CIFAR_CELL, MNIST_CELL} <= set(tests)
    assert {g: grades[g] for g in tests if grades[g][0] != grades[g][1]} == {}
    text = _output_text(graded["autograded"]["solution"], CIFAR_CELL)
    assert re.search(r"classifies \d+\.\d+% of 2000 held-out test images", text), text


def test_no_judge_broke(graded):
    records = graded["course"].records
    broken = {(student, name): [p for p in rec.problems if p[0] == "judge-error"]
              for student, record in records.items() for name, rec in record.notebooks.items()}
    assert {k: v for k, v in broken.items() if v} == {}


def test_instructor_checkpoint_is_small_and_clears_the_full_marks_threshold(graded):
    assert (ASSETS / "cifar10_model.pt").stat().st_size <= 5 * 2**20
    assert graded["cifar_meta"]["architecture"] == "FastCifarNet"
    assert _cifar10_grading_accuracy(graded["cifar_state"], graded["cifar_meta"]) >= CIFAR_FULL


def test_grading_never_trains_and_leaves_checkpoints_alone(graded):
    folder = graded["course"].root / "autograded" / "solution" / HW
    assert (folder / "cifar10_model.pt").read_bytes() == graded["cifar_bytes"]
    assert (folder / "mnist_model.pt").read_bytes() == graded["mnist_bytes"]
    every_output = nbformat.writes(graded["autograded"]["solution"])
    assert "epoch 1/" not in every_output, "a training loop ran during grading"
    # the same notebook does train when it is not graded (its quick run printed train's progress bars)
    assert "epoch 1/" in nbformat.writes(graded["quick_nb"])


def test_release_scores_zero_on_every_autograded_cell(graded):
    grades = graded["grades"]["release"]
    assert {g: grades[g] for g in grade_ids(graded["source"]) if grades[g][0] != 0} == {}


def test_missing_and_corrupt_checkpoints_get_zero_with_a_clear_message(graded):
    release = graded["autograded"]["release"]
    assert graded["grades"]["release"][CIFAR_CELL] == (0, CIFAR_POINTS)
    assert "cifar10_model.pt was not found next to the notebook" in _output_text(release, CIFAR_CELL)
    assert "mnist_model.pt was not found next to the notebook" in _output_text(release, MNIST_CELL)
    grades, nb = graded["grades"]["degraded"], graded["autograded"]["degraded"]
    assert grades[MNIST_CELL] == (0, 8)
    assert "mnist_model.pt is corrupt" in _output_text(nb, MNIST_CELL)
    # a bad checkpoint costs only its own cell
    assert _lost(grades) == {MNIST_CELL, CIFAR_CELL}


def test_wrong_architecture_gets_zero_with_a_clear_message(graded):
    grades, nb = graded["grades"]["wrong_arch"], graded["autograded"]["wrong_arch"]
    assert grades[CIFAR_CELL] == (0, CIFAR_POINTS)
    cifar_text = _output_text(nb, CIFAR_CELL)
    assert "does not fit this FastCifarNet" in cifar_text and "stem.weight" in cifar_text, cifar_text
    assert grades[MNIST_CELL] == (0, 8)
    assert "architecture='ResNet18', which is not an nn.Module class defined in this notebook" in _output_text(nb, MNIST_CELL)


def test_dropout_left_on_in_eval_mode_loses_the_behaviour_points_only(graded):
    grades = graded["grades"]["wrong_arch"]
    assert _lost(grades) == {BEHAVIOUR, MNIST_CELL, CIFAR_CELL}  # the two checkpoints are broken on purpose
    assert grades[BEHAVIOUR] == (0, 3)
    assert "in eval mode" in _output_text(graded["autograded"]["wrong_arch"], BEHAVIOUR)


def test_batch_statistics_in_eval_mode_lose_the_behaviour_points_only(graded):
    grades = graded["grades"]["batch_stats"]
    assert _lost(grades) == {BEHAVIOUR}, grades
    assert grades[BEHAVIOUR] == (0, 3)
    text = _output_text(graded["autograded"]["batch_stats"], BEHAVIOUR)
    assert "should not depend on the other images of the batch" in text, text


def test_an_exported_model_other_than_the_saved_one_gets_zero(graded):
    grades = graded["grades"]["swapped_export"]
    assert _lost(grades) == {CIFAR_CELL}, grades
    assert grades[CIFAR_CELL] == (0, CIFAR_POINTS)
    text = _output_text(graded["autograded"]["swapped_export"], CIFAR_CELL)
    assert "does not hold the weights saved in the file" in text, text


def test_partial_credit_is_linear_in_the_measured_accuracy(graded):
    score, max_score = graded["grades"]["degraded"][CIFAR_CELL]
    accuracy = _cifar10_grading_accuracy(graded["degraded_state"], graded["cifar_meta"])
    expected = CIFAR_POINTS * min(1, max(0, (accuracy - CIFAR_FLOOR) / (CIFAR_FULL - CIFAR_FLOOR)))
    assert max_score == CIFAR_POINTS
    assert 0 < score < CIFAR_POINTS, (score, accuracy)
    assert score == pytest.approx(expected, abs=0.011)
    assert f"{accuracy:.2%}" in _output_text(graded["autograded"]["degraded"], CIFAR_CELL)


def test_quick_run_trains_saves_and_earns_little(graded):
    nb = graded["quick_nb"]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert set(graded["quick_files"]) == {"cifar10_model.pt", "mnist_model.pt"}
    assert "CIFAR-10 test accuracy" in _output_text(nb, "cifar10_training")
    grades = graded["grades"]["quick"]
    assert grades[CIFAR_CELL][0] < CIFAR_POINTS / 2, grades[CIFAR_CELL]
    assert grades[MNIST_CELL][0] < 8, grades[MNIST_CELL]
    assert "held-out test images" in _output_text(graded["autograded"]["quick"], CIFAR_CELL)


# ----------------------------------------------------------------------------------------------------------
# Question 6 (transfer learning), the training profile and the notebook's text


def test_every_mistake_has_a_student():
    planted = [m for mistakes in STUDENTS.values() for m in mistakes]
    assert sorted(planted) == sorted(MISTAKES) and len(planted) == len(set(planted))


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_planted_mistakes_lose_exactly_their_points(graded, student):
    grades = graded["grades"][student]
    expected = set().union(*(MISTAKES[m][1] for m in STUDENTS[student]))
    assert _lost(grades) == expected, grades
    assert all(grades[g][0] == 0 for g in expected), {g: grades[g] for g in expected}
    nb = graded["autograded"][student]
    for grade_id in expected:  # the feedback says what is wrong
        text = _output_text(nb, grade_id)
        assert "mnist_to_cifar_input" in text or "freeze_features" in text or "gradient" in text, (grade_id, text)


def test_pretrained_features_checkpoint_is_small_safe_and_fits_the_notebook_class():
    assert FEATURES.stat().st_size < 2**20
    payload = torch.load(FEATURES, map_location="cpu", weights_only=True)  # plain tensors and values only
    assert payload["metadata"]["architecture"] == "CifarFeatureCNN"
    from eep590_utils import load_checkpoint

    model, _ = load_checkpoint(FEATURES, _notebook_namespace()["CifarFeatureCNN"]())
    assert _cifar10_test_accuracy(model) > 0.6  # features worth transferring
    # frozen features stay in eval mode (BatchNorm keeps its CIFAR-10 statistics) when the model trains
    for p in model.features.parameters():
        p.requires_grad_(False)
    model.train()
    assert model.head.training and not any(m.training for m in model.features.modules())


def test_pretrained_checkpoint_is_released_next_to_the_notebook(graded):
    for folder in (REPO / "release" / HW, graded["course"].root / "release" / HW):
        assert (folder / FEATURES.name).read_bytes() == FEATURES.read_bytes(), folder
    # trained by a script kept out of source/ (everything there reaches students)
    assert (ASSETS / "make_cifar_features.py").is_file()


def test_quick_run_compares_the_three_ways_of_transfer(graded):
    text = "\n".join(o.get("text", "") for c in graded["quick_nb"].cells if c.cell_type == "code" for o in c.outputs)
    for way in ("(a) frozen features", "(b) fine-tuned", "(c) from scratch"):
        assert f"{way}: MNIST test accuracy" in text, text[-2000:]


def test_training_profile_is_set_at_the_top_and_honours_EEP590_QUICK(graded):
    nb = read_notebook(SOURCE)
    code = [c for c in nb.cells if c.cell_type == "code"]
    profile = code[2]  # after the set-up check and the imports, before any training, editable (no nbgrader lock)
    assert 'PROFILE = "auto"' in profile.source and not profile.metadata.get("nbgrader", {}).get("locked")
    assert "EEP590_QUICK" in profile.source and "QUICK =" in profile.source
    for cell in code[3:]:
        assert "PROFILE = " not in cell.source and 'os.environ.get("EEP590_QUICK")' not in cell.source
    # the quick run (EEP590_QUICK=1) chose the quick profile inside the notebook
    assert "profile: quick" in "\n".join(o.get("text", "") for o in graded["quick_nb"].cells[
        nb.cells.index(profile)].outputs)
    # every profile has a CIFAR-10 recipe, and the intro says what each part costs on a CPU and on a GPU
    assert all(f'"{p}": (' in cell_by_grade_id(nb, "cifar10_training").source for p in ("gpu", "cpu", "quick"))
    intro = nb.cells[0].source
    assert '`"cpu"` profile' in intro and '`"gpu"` profile' in intro and 'PROFILE = "cpu"' in intro
    assert "**Everything**" in intro


def test_heading_points_add_up():
    nb = read_notebook(SOURCE)
    heading = re.compile(r"^(#{1,3}) .*\((\d+) points?\)\s*$", re.M)

    def points(cell):
        meta = cell.metadata.get("nbgrader", {})
        return meta.get("points", 0) if meta.get("grade") else 0

    claims = []  # [level, claimed, running sum, text]
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not cell.metadata.get("nbgrader", {}).get("task"):
            for match in heading.finditer(cell.source):
                claims.append([len(match.group(1)), int(match.group(2)), 0, match.group(0).strip()])
        for index, entry in enumerate(claims):
            later = [e for e in claims[index + 1:] if e[0] <= entry[0]]
            if not later:  # the heading is still open
                entry[2] += points(cell)
    assert claims[0][0] == 1 and claims[0][1] == sum(points(c) for c in nb.cells)
    assert len(claims) == 7
    assert [text for _, claimed, total, text in claims if claimed != total] == []


def test_text_names_the_right_parts_and_one_mnist_split():
    nb = read_notebook(SOURCE)
    intro = nb.cells[0].source
    assert intro.startswith("# Homework 2, part 4:") and "homework 1" in intro
    assert "first two parts of this homework" not in intro
    text = " ".join(" ".join(c.source for c in nb.cells if c.cell_type == "markdown").replace("**", "").split())
    # the split the loaders make of the offline copy (hw3 states the same one)
    assert "into 8,000 training and 2,000 test images" in text
    assert "7,200 training, 800 validation and 2,000 test images" in text
    assert "8,000 offline training images reaches" not in text
