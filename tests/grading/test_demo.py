"""The README's main job: the demo on the bundled hw1 sample class, with every student's expected score
per question; the bundled samples stay in sync with hw1's source and release."""
import csv
import html
import os
import re
import shutil
import sys

import nbformat
import pytest
from conftest import REPO
from sample_class import build_samples

from eep590_utils.grading.course import Course
from eep590_utils.grading.demo import run_demo
from eep590_utils.grading.release import secret_lines
from eep590_utils.grading.report import score_rows
from eep590_utils.grading.sandbox import bwrap_path

pytestmark = pytest.mark.slow  # grades notebooks: kernels, nbgrader, seconds each

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

BN_FORWARD = ["batchnorm_forward_train_stats", "batchnorm_forward_matches_torch", "batchnorm_running_averages"]
BN_BACKWARD = ["batchnorm_backward_gradient_check", "batchnorm_backward_matches_autograd"]
SPATIAL = ["spatial_batchnorm_forward_train_stats", "spatial_batchnorm_forward_matches_torch",
           "spatial_batchnorm_backward_gradient_check", "spatial_batchnorm_backward_matches_autograd"]
DROPOUT_FORWARD = ["dropout_forward_statistics", "dropout_forward_matches_definition"]
DROPOUT_BACKWARD = ["dropout_backward_gradient_check", "dropout_backward_matches_definition"]
CROSS_CORR = ["cross_corr_2d_example", "cross_corr_2d_matches_conv2d", "multi_in_out_example", "multi_in_out_matches_conv2d"]

# student -> notebook -> "all" (every graded cell scores 0, written answers included: nothing to grade)
#                       or the autograded cells that score 0 (every other autograded cell: full marks;
#                       a written answer the student wrote awaits a grader)
EXPECTED_ZERO = {
    "perfect": {},
    "blank": {"batchnorm_dropout": "all", "cross_correlation": "all", "warmup": "all"},  # blank answers: 0, no TA needed
    "partial_conv": {"cross_correlation": CROSS_CORR,  # its unbiased variance is NaN for a batch of one
                     "batchnorm_dropout": BN_FORWARD + BN_BACKWARD + SPATIAL + ["batchnorm_forward_batch_of_one"]},
    "partial_dropout": {"batchnorm_dropout": DROPOUT_FORWARD + ["dropout_backward_gradient_check"],
                        "warmup": ["lr_curve_labels_correct"]},
    "broken": {"cross_correlation": "all", "warmup": "all", "batchnorm_dropout": DROPOUT_FORWARD + DROPOUT_BACKWARD},
    "endless": {"batchnorm_dropout": DROPOUT_BACKWARD},
    # hostile's attacks on the checks (always-true comparisons, lying str subclasses, silenced tracebacks) gain
    # nothing: judges decide outside its kernel, so it scores what its wrong answers are worth
    "hostile": {"cross_correlation": ["cross_corr_2d_example", "cross_corr_2d_shape_and_dtype", "cross_corr_2d_matches_conv2d",
                                      "cross_corr_2d_keeps_dtype", "multi_in_out_example", "multi_in_out_matches_conv2d"],
                "batchnorm_dropout": DROPOUT_FORWARD + ["dropout_backward_gradient_check"],
                "warmup": ["lr_curve_labels_correct", "activation_name_correct"]},
}
EXPECTED_FLAGS = {
    "perfect": set(), "blank": set(), "partial_conv": set(), "partial_dropout": set(),
    "broken": {"corrupt", "missing"}, "endless": {"timeout", "suspicious-code"},
    "hostile": {"suspicious-code", "edited-locked-cell", "deleted-cell"},
}


def test_samples_are_in_sync_with_hw1():
    built = build_samples(REPO / "source" / "hw1", REPO / "release" / "hw1")
    on_disk = {d.name: sorted(p.name for p in d.iterdir()) for d in (REPO / "samples" / "hw1").iterdir()}
    assert on_disk == {s: sorted(files) for s, files in built.items()}
    for student, files in built.items():
        for name, nb in files.items():
            text = (REPO / "samples" / "hw1" / student / name).read_text()
            expected = nb if isinstance(nb, str) else nbformat.writes(nb)
            assert text.strip() == expected.strip(), f"samples/hw1/{student}/{name} is stale: run python tests/sample_class.py"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, run on a copy of the kit (so the repository's own release/ is not rewritten)."""
    root = tmp_path_factory.mktemp("kit")
    for part in ("source", "samples"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "nbgrader_config.py", root)
    lines = []
    demo_course = run_demo(Course(root), dest=root / "demo-course", workers=2, cell_timeout=30, echo=lines.append)
    return Course(root), demo_course, "\n".join(lines)


def test_demo_rebuilds_every_release(demo):
    kit, _, log = demo
    for assignment in kit.assignments():
        assert f"release/{assignment}:" in log
        for path in kit.path("source", assignment=assignment).glob("*.ipynb"):
            assert (kit.path("release", assignment=assignment) / path.name).is_file()


@pytest.mark.parametrize("student", sorted(EXPECTED_ZERO))
def test_every_sample_student_scores_as_expected_per_question(demo, student):
    _, course, _ = demo
    if student == "hostile" and not bwrap_path():
        pytest.skip("without bubblewrap the hostile sample can read the solutions (autograde warns loudly)")
    rows = [r for r in score_rows(course, "hw1") if r["student"] == student]
    assert {r["notebook"] for r in rows} == {"warmup", "cross_correlation", "batchnorm_dropout"}
    for r in rows:
        expected = EXPECTED_ZERO[student].get(r["notebook"], [])
        if expected == "all" or (expected == "auto" and r["kind"] == "auto") or r["grade_id"] in expected:
            want = 0.0
        elif r["kind"] == "manual":
            assert r["needs_manual_grade"], r  # written answers wait for a grader
            continue
        else:
            want = r["max_score"]
        assert r["score"] == want, f"{student} {r['notebook']} {r['grade_id']}: {r['score']} != {want}"


def test_demo_flags_and_summary(demo):
    _, course, log = demo
    from eep590_utils.grading.records import load_records

    records = load_records(course, "hw1")
    assert {s: set(r.flags) for s, r in records.items()} == EXPECTED_FLAGS
    for student in EXPECTED_ZERO:
        assert re.search(rf"^{student}\s", log, re.M), f"no summary row for {student}"
    # 28 + 15 + 5 autograded points; the 22 points of written answers are pending, not 0
    assert re.search(r"^perfect\s.*5/25 \(\+20 pending\).*\s48/70\s+22 pts", log, re.M), log
    assert re.search(r"^blank\s.*\s0/70\s+-", log, re.M)  # nothing for a TA: blank answers score 0
    assert "? = awaiting manual grading" in log


def test_blank_answers_need_no_ta_and_written_ones_are_pending(demo):
    _, course, _ = demo
    rows = score_rows(course, "hw1")
    pending = {s: sum(r["pending"] for r in rows if r["student"] == s) for s in EXPECTED_ZERO}
    assert pending["blank"] == 0  # before the answer-cell pattern: 9 items
    assert pending["broken"] == 2  # its corrupt notebooks have none; its batchnorm one answers both questions
    assert pending["perfect"] == pending["partial_conv"] == 11  # one per written question of hw1
    feedback = html.unescape(re.sub(r"<[^>]+>", " ", (course.path("feedback", "perfect", "hw1") / "warmup.html").read_text()))
    assert "not graded yet" in feedback and "20 point(s) in 9 answer(s) not graded yet" in " ".join(feedback.split())
    rows = {r["student_id"]: r for r in csv.DictReader((course.reports_dir / "grades.csv").open())}
    assert rows["perfect"]["hw1"] == "PENDING (48 so far)" and rows["perfect"]["needs_manual_grading"] == "11"
    assert float(rows["blank"]["hw1"]) == 0 and rows["blank"]["needs_manual_grading"] == "0"
    report = (course.reports_dir / "hw1" / "index.html").read_text()
    assert "Grading queue" in report and report.count("/formgrader/submissions/") >= 11 * 5


def test_demo_feedback_report_and_grades_hold_no_secrets(demo):
    _, course, _ = demo
    secrets = set()
    for path in course.path("source", assignment="hw1").glob("*.ipynb"):
        found = secret_lines(nbformat.read(path, as_version=4))
        secrets |= found["hidden test"] | found["mark scheme"]
    assert len(secrets) > 50
    # the hidden tests now live in the judges: their code (not the messages they show students) stays secret too
    judge_lines = set()
    for path in (course.path("source", assignment="hw1") / "judges").glob("*.py"):
        for line in path.read_text().splitlines():
            line = line.strip()
            if len(line) >= 30 and not line.startswith(("#", '"', "f\"", "'", "import ", "from ")):
                judge_lines.add(line)
    public = {line.strip() for path in course.path("source", assignment="hw1").glob("*.ipynb")
              for cell in nbformat.read(path, as_version=4).cells for line in cell.source.splitlines()}
    # a visible test's checks are in its judge and in the notebook (maybe wrapped otherwise): no secret
    judge_lines = {line for line in judge_lines if not any(line in text for text in public)}
    assert len(judge_lines) > 50
    secrets |= judge_lines
    files = sorted(course.path("feedback").glob("*/hw1/*.html"))
    assert len(files) == 21  # 7 students x 3 notebooks; broken's corrupt and missing ones get a notice page
    notice = (course.path("feedback", "broken", "hw1") / "warmup.html").read_text()
    assert "could not be graded" in notice and "warmup.ipynb was not submitted" in notice
    report = course.reports_dir / "hw1" / "index.html"
    for path in files + [report]:
        text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path}: {leaked[:3]}"
    rows = list(csv.DictReader((course.reports_dir / "grades.csv").open()))
    assert {r["student_id"] for r in rows} == {"Points Possible", *EXPECTED_ZERO}
