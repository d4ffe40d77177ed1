"""The grading pipeline end to end on a tiny course: every failure mode costs only its own points,
grades are neither lost nor duplicated, feedback and report never show hidden tests or mark schemes."""
import csv
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from eep590_utils.grading import autograde as autograde_module
from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course, CourseError
from eep590_utils.grading.export import export_grades
from eep590_utils.grading.feedback import generate_feedback
from eep590_utils.grading.records import load_records
from eep590_utils.grading.release import release
from eep590_utils.grading.report import write_report
from eep590_utils.grading.sandbox import bwrap_path
from eep590_utils.grading.settings import Limits

pytestmark = pytest.mark.slow  # grades notebooks: kernels, nbgrader, seconds each

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import HIDDEN_CHECK, make_toy_course, solved, submit  # noqa: E402

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # nbgrader runs alembic
LIMITS = Limits(cell_timeout=20, notebook_timeout=240, memory_bytes=2**30)
SANDBOXED = bwrap_path() is not None

HOSTILE = """import glob
    for path in glob.glob('../../../source/toy/*.ipynb') + glob.glob('../../../gradebook.db'):
        print('stole', path)
        return a + b  # only right if it could read the instructor's files
    for path in glob.glob('../../../submitted/*/toy/toy.ipynb'):
        open(path, 'w').write('overwritten')
    return None"""

# student -> (submission, expected autograded scores (add_visible, add_hidden, mul_visible), expected flags)
EXPECTED = {
    "alice": ((1, 2, 1), []),  # perfect
    "bob": ((1, 0, 1), []),  # wrong on negative numbers: only the hidden test fails
    "carol": ((0, 0, 0), []),  # the release as handed out
    "dave": ((0, 0, 0), ["corrupt"]),  # truncated JSON
    "erin": ((0, 0, 1), ["deleted-cell", "edited-locked-cell"]),  # test edited to `pass`, hidden test deleted
    "frank": ((0, 0, 1), ["suspicious-code", "timeout"]),  # endless loop ignoring SIGINT in add
    "grace": ((0, 0, 1), ["suspicious-code"]),  # tries to read the solution and overwrite others
    "heidi": ((1, 2, 0), ["memory"]),  # 1.5 GiB allocation in mul's cell
    "ivan": ((1, 2, 0), ["crash"]),  # kills its kernel in mul's cell
    "mallory": ((0, 0, 1), ["suspicious-code"]),  # disables check_close instead of writing add
}
MALLORY = """import eep590_utils.checks
eep590_utils.checks.check_close = lambda *args, **kwargs: None
check_close = lambda *args, **kwargs: None
def add(a, b):
    return 0"""


def _submissions(release_nb):
    erin = solved(release_nb, add="return None")
    test_cells = [c for c in erin.cells if c.metadata.get("nbgrader", {}).get("grade")]
    test_cells[0].source = "pass"
    erin.cells.remove(test_cells[1])
    heidi = solved(release_nb, mul="return a * b")
    heidi.cells[5].source = "import numpy as np\nhog = np.ones(3 * 2**30 // 16)\nhog += 1\n" + heidi.cells[5].source
    ivan = solved(release_nb)
    ivan.cells[5].source = "import os\nos.kill(os.getpid(), 9)\n" + ivan.cells[5].source
    mallory = solved(release_nb)
    mallory.cells[2].source = MALLORY
    return {
        "mallory": mallory,
        "alice": solved(release_nb),
        "bob": solved(release_nb, add="return a - b if b < 0 else a + b"),
        "carol": release_nb,
        "dave": nbformat.writes(solved(release_nb))[:200],
        "erin": erin,
        "frank": solved(release_nb, add="import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n    while True: pass"),
        "grace": solved(release_nb, add=HOSTILE),
        "heidi": heidi,
        "ivan": ivan,
    }


def _scores(course, student):
    with course.gradebook() as gb:
        grades = {g.name: g.score for g in gb.find_submission_notebook("toy", "toy", student).grades}
    return tuple(grades[g] for g in ("add_visible", "add_hidden", "mul_visible"))


def _grade_rows(course):
    with course.gradebook() as gb:
        return [(g.student.id, g.name) for s in gb.assignment_submissions("toy") for nb in s.notebooks for g in nb.grades]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_toy_course(tmp_path_factory.mktemp("toy") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    for student, nb in _submissions(release_nb).items():
        submit(root, student, nb)
    log = []
    records = autograde(course, "toy", workers=2, limits=LIMITS, echo=log.append)
    return course, records, log


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_student_gets_exactly_the_expected_scores(graded, student):
    course, records, _ = graded
    expected_scores, _ = EXPECTED[student]
    if student == "grace" and not SANDBOXED:
        pytest.skip("without bubblewrap the hostile notebook can read the solutions (the run warns loudly)")
    assert _scores(course, student) == expected_scores


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_problem_is_flagged_with_its_reason(graded, student):
    _, records, _ = graded
    _, expected_flags = EXPECTED[student]
    flags = [f for f in records[student].flags if f not in ("not-run", "unsandboxed")]
    assert flags == expected_flags


def test_reasons_are_recorded_in_words(graded):
    _, records, _ = graded
    assert "not a readable notebook" in records["dave"].notebooks["toy"].reason
    assert any("20 s limit per cell" in m for _, m in records["frank"].notebooks["toy"].problems)
    assert any("memory limit" in m for _, m in records["heidi"].notebooks["toy"].problems)
    assert any("kernel died" in m for _, m in records["ivan"].notebooks["toy"].problems)
    assert ["deleted-cell", "add_hidden"] in records["erin"].notebooks["toy"].tampered
    assert load_records(graded[0], "toy")["erin"].flags == records["erin"].flags  # the JSON record round-trips


def test_tampered_test_cells_are_restored_before_grading(graded):
    course, _, _ = graded
    nb = nbformat.read(course.path("autograded", "erin", "toy") / "toy.ipynb", as_version=4)
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    assert "check_close(add(2, 3)" in sources["add_visible"]
    assert HIDDEN_CHECK in sources["add_hidden"]


def test_hostile_code_could_not_touch_other_submissions(graded):
    course, _, _ = graded
    alice = course.path("submitted", "alice", "toy") / "toy.ipynb"
    assert nbformat.read(alice, as_version=4).cells  # still a notebook, not 'overwritten'
    out = "".join(o.get("text", "") for c in nbformat.read(course.path("autograded", "grace", "toy") / "toy.ipynb", as_version=4).cells
                  for o in c.get("outputs", []))
    if SANDBOXED:
        assert "stole" not in out


def test_no_grade_is_lost_or_duplicated(graded):
    course, _, _ = graded
    rows = _grade_rows(course)
    assert len(rows) == len(set(rows)) == len(EXPECTED) * 5  # 3 tests + 1 written answer + its 0-point question per student


def test_regrading_is_idempotent_and_one_worker_agrees_with_two(graded):
    course, _, _ = graded
    before = {s: _scores(course, s) for s in ("alice", "bob", "dave")}
    rows_before = sorted(_grade_rows(course))
    autograde(course, "toy", students=["alice", "bob", "dave"], workers=1, limits=LIMITS, echo=lambda *_: None)
    assert {s: _scores(course, s) for s in ("alice", "bob", "dave")} == before
    assert sorted(_grade_rows(course)) == rows_before


def test_feedback_shows_scores_and_visible_tests_but_no_hidden_test_or_mark_scheme(graded):
    course, _, _ = graded
    files = generate_feedback(course, "toy")
    students = {p.parts[-3] for p in files}
    assert students == set(EXPECTED)
    dave = (course.path("feedback", "dave", "toy") / "toy.html").read_text()
    assert "could not be graded" in dave and "not a readable notebook" in dave and "0 / 6" in dave
    for path in files:
        text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
        assert HIDDEN_CHECK not in text and "add(10, -3)" not in text, path
        assert "SECRET RUBRIC TEXT" not in text and "MARK SCHEME" not in text, path
        assert "check_close(add(2, 3), 5" in text or path.parts[-3] in ("erin", "dave")
    bob = html.unescape(re.sub(r"<[^>]+>", "", (course.path("feedback", "bob", "toy") / "toy.html").read_text()))
    assert "add is wrong on negative numbers" in bob  # the hidden test's message, without its code
    assert "Score: 2.0 / 6.0" in bob or "2.0 / 6.0" in bob


def test_report_has_distributions_failures_and_flags_without_secrets(graded):
    course, _, _ = graded
    path = write_report(course, "toy")
    text = html.unescape(re.sub(r"<[^>]+>", " ", path.read_text()))
    for png in ("total_scores.png", "questions_toy.png"):
        assert (path.parent / png).stat().st_size > 1000
    assert "add_hidden" in text and "add is wrong on negative numbers" in text  # a common failure
    for student, (_, flags) in EXPECTED.items():
        for flag in flags:
            assert re.search(rf"{student}\s+[^\n]*{flag}", text), (student, flag)
    assert "not a readable notebook" in text
    assert HIDDEN_CHECK not in text and "SECRET RUBRIC TEXT" not in text
    export_grades(course, path.parent / "grades.csv", ["toy"], allow_pending=True)  # as `eep590 report` does
    rows = list(csv.DictReader((path.parent / "grades.csv").open()))
    assert rows[0]["student_id"] == "Points Possible" and {r["student_id"] for r in rows[1:]} == set(EXPECTED)


def test_grades_export_for_the_lms(graded, tmp_path):
    course, _, _ = graded
    out = tmp_path / "grades.csv"
    assert export_grades(course, out) == len(EXPECTED)
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["student_id"] == "Points Possible" and float(rows[0]["toy"]) == 6
    by_student = {r["student_id"]: r for r in rows[1:]}
    for student, (scores, _) in EXPECTED.items():
        if student == "grace" and not SANDBOXED:
            continue
        assert float(by_student[student]["toy"]) == sum(scores)
        assert by_student[student]["needs_manual_grading"] == "0"  # nobody wrote an answer: blank answers score 0


def test_missing_bubblewrap_is_said_loudly(tmp_path, monkeypatch):
    root = make_toy_course(tmp_path / "course")
    course = Course(root)
    release(course, "toy")
    submit(root, "zoe", solved(nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)))
    monkeypatch.setattr(autograde_module, "bwrap_path", lambda: None)
    with pytest.raises(CourseError, match="--no-sandbox"):  # real submissions are never graded unsandboxed
        autograde(course, "toy", workers=1, limits=LIMITS)
    log = []
    records = autograde(course, "toy", workers=1, limits=LIMITS, echo=log.append, sandbox=False)
    assert sum("UNSANDBOXED" in line for line in log) == 2  # said before and after the run, never per student
    assert not records["zoe"].sandboxed and "unsandboxed" not in records["zoe"].flags
    assert _scores(course, "zoe") == (1, 2, 1)


def test_clear_errors_before_anything_runs(tmp_path):
    root = make_toy_course(tmp_path / "course")
    course = Course(root)
    with pytest.raises(CourseError, match="release toy"):
        autograde(course, "toy")
    release(course, "toy")
    with pytest.raises(CourseError, match="no submissions"):
        autograde(course, "toy")
    with pytest.raises(CourseError, match="no assignment 'nope'"):
        autograde(course, "nope")


@pytest.mark.postgres
def test_postgresql_gradebook(postgres, tmp_path):
    root = make_toy_course(tmp_path / "course")
    course = Course(root, db_url=postgres)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "alice", solved(release_nb))
    submit(root, "bob", solved(release_nb, add="return a - b if b < 0 else a + b"))
    autograde(course, "toy", workers=2, limits=LIMITS, echo=lambda *_: None)
    assert _scores(course, "alice") == (1, 2, 1)
    assert _scores(course, "bob") == (1, 0, 1)
    assert not (root / "gradebook.db").exists()  # everything went to PostgreSQL


def test_a_notebook_nbgrader_cannot_process_costs_only_itself(tmp_path):
    root = make_toy_course(tmp_path / "course")
    shutil.copy(root / "source" / "toy" / "toy.ipynb", root / "source" / "toy" / "toy2.ipynb")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    bad = solved(release_nb)
    bad.cells[2].metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "add",
                                         "schema_version": 3}  # metadata the student broke: a graded cell without points
    submit(root, "oscar", solved(release_nb))
    submit(root, "oscar", bad, name="toy2.ipynb")
    records = autograde(course, "toy", workers=2, limits=LIMITS, echo=lambda *_: None)
    assert records["oscar"].notebooks["toy"].status == "graded"
    assert records["oscar"].notebooks["toy2"].status == "failed"
    assert "toy2.ipynb" in records["oscar"].notebooks["toy2"].reason and "add" in records["oscar"].notebooks["toy2"].reason
    assert _scores(course, "oscar") == (1, 2, 1)
    with course.gradebook() as gb:
        assert all(g.score == 0 for g in gb.find_submission_notebook("toy2", "toy", "oscar").grades)


def test_plain_nbgrader_autograde_refuses_and_scores_nothing(tmp_path):
    """The kit's hidden tests live in judges: plain nbgrader would give them full marks, so it stops."""
    root = make_toy_course(tmp_path / "course")
    course = Course(root)
    release(course, "toy")
    submit(root, "alice", solved(nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)))
    done = subprocess.run(["nbgrader", "autograde", "toy"], cwd=root, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "EEP590_ALLOW_PLAIN_AUTOGRADE"})
    assert "decided by judges" in done.stdout + done.stderr
    assert "eep590 autograde" in done.stdout + done.stderr
    assert not list((root / "autograded").glob("*/toy/*.ipynb"))
