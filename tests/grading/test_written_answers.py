"""Written answers are first-class: the answer cell carries the points, a blank answer scores 0 with no TA
action, graders see the rubric beside the answer, students never see it (release, feedback), pending
grades are never shown or exported as 0, and the kit's flags reach formgrader's "Flagged?" column."""
import csv
import html
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO

from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course
from eep590_utils.grading.export import PendingGradesError, export_grades
from eep590_utils.grading.feedback import generate_feedback
from eep590_utils.grading.flags import flag_in_gradebook
from eep590_utils.grading.records import NotebookRecord, StudentRecord
from eep590_utils.grading.release import release
from eep590_utils.grading.report import score_rows, summary_text, write_report
from eep590_utils.grading.settings import Limits

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import MODEL_ANSWER, WRITTEN_ID, make_toy_course, solved, submit  # noqa: E402

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
LIMITS = Limits(cell_timeout=20, notebook_timeout=240, memory_bytes=2**30)
MARK_SCHEME = re.compile(r"=== BEGIN MARK SCHEME ===(.*?)=== END MARK SCHEME ===", re.S)
ANSWER = "Because counting does not depend on the order: ALICE'S OWN WORDS."
COMMENT = "Good intuition; name the axiom next time. TA COMMENT TEXT"


def _text(path):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", Path(path).read_text())).split())


def _norm(text):
    return " ".join(text.split()).lower()


# ---------------------------------------------------------------------------------------------- every notebook
def written_questions(nb):
    """``[(question cell, answer cell)]``: the 0-point task cells and the graded answer cell after each."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("task"):
            pairs.append((cell, nb.cells[i + 1]))
    return pairs


SOURCES = sorted((REPO / "source").glob("*/*.ipynb"))


def test_every_written_question_uses_the_answer_cell_pattern():
    count = 0
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        graded_markdown = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]
        pairs = written_questions(nb)
        assert len(pairs) == len(graded_markdown), f"{path.name}: every graded answer cell follows its question"
        for question, answer in pairs:
            q, a = question.metadata["nbgrader"], answer.metadata.get("nbgrader", {})
            where = f"{path.parent.name}/{path.name} {q['grade_id']}"
            assert q["locked"] and q["points"] == 0 and not q["grade"], f"{where}: the question carries no points"
            assert q["grade_id"] == a.get("grade_id", "") + "_question", where
            assert answer.cell_type == "markdown" and a["grade"] and a["solution"] and not a["locked"], where
            assert a["points"] > 0 and not a.get("task"), where
            scheme = MARK_SCHEME.search(question.source)
            assert scheme and "ubric" in scheme.group(1), f"{where}: the mark scheme (with the rubric) sits in the question"
            # the answer cell's source in source/ is the model answer, which graders see in the mark scheme
            assert len(answer.source) > 40 and _norm(answer.source)[1:] in _norm(scheme.group(1)), where
            count += 1
    assert count == 33  # 11 (hw1) + 12 (hw2) + 10 (hw3)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_release_has_blank_answer_cells_and_no_model_answer_or_rubric(path):
    source = nbformat.read(path, as_version=4)
    released = nbformat.read(REPO / "release" / path.parent.name / path.name, as_version=4)
    text = "\n".join(cell.source for cell in released.cells)
    secrets = set()
    for question, answer in written_questions(source):
        secrets |= {line.strip() for line in answer.source.splitlines() if len(line.strip()) >= 16}
        secrets |= {line.strip() for line in MARK_SCHEME.search(question.source).group(1).splitlines() if len(line.strip()) >= 16}
        rel_answer = next(c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == answer.metadata.nbgrader.grade_id)
        assert rel_answer.source == "YOUR ANSWER HERE" and rel_answer.metadata.nbgrader.points == answer.metadata.nbgrader.points
    assert not [s for s in secrets if s in text]
    assert "MARK SCHEME" not in text and "Rubric" not in text and "Model answer" not in text


# ---------------------------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The toy course: alice writes an answer, bob leaves it blank, carol is flagged (her test cell edited)."""
    root = make_toy_course(tmp_path_factory.mktemp("written") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "alice", solved(release_nb, answer=ANSWER))
    submit(root, "bob", solved(release_nb))
    carol = solved(release_nb, answer="carol's answer")
    next(c for c in carol.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "mul_visible").source = "pass"
    submit(root, "carol", carol)
    records = autograde(course, "toy", workers=1, limits=LIMITS, echo=lambda *_: None,
                        **({} if shutil.which("bwrap") else {"sandbox": False}))
    flagged = flag_in_gradebook(course, "toy", records)
    return course, release_nb, records, flagged


def _grade(course, student, grade_id):
    with course.gradebook() as gb:
        grade = gb.find_grade(grade_id, "toy", "toy", student)
        return grade.score, grade.needs_manual_grade, grade.max_score


@pytest.mark.slow
def test_blank_answer_scores_zero_without_a_grader_and_a_written_one_waits(graded):
    course, release_nb, _, _ = graded
    answer = next(c for c in release_nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN_ID)
    assert answer.source == "YOUR ANSWER HERE" and MODEL_ANSWER not in nbformat.writes(release_nb)
    assert "SECRET RUBRIC TEXT" not in nbformat.writes(release_nb)
    assert _grade(course, "bob", WRITTEN_ID) == (0.0, False, 2.0)
    assert _grade(course, "alice", WRITTEN_ID) == (0.0, True, 2.0)
    # the 0-point question cell is settled: nothing for formgrader's to-do list
    assert _grade(course, "alice", "why_commutative_question")[1:] == (False, 0.0)
    with course.gradebook() as gb:
        assert not gb.find_submission_notebook("toy", "toy", "bob").needs_manual_grade
        assert gb.find_submission_notebook("toy", "toy", "alice").needs_manual_grade
    rows = {(r["student"], r["grade_id"]): r for r in score_rows(course, "toy")}
    assert ("alice", "why_commutative_question") not in rows and rows[("alice", WRITTEN_ID)]["pending"]
    assert not rows[("bob", WRITTEN_ID)]["pending"]


@pytest.mark.slow
def test_graders_see_the_rubric_right_above_the_answer(graded):
    course, _, _, _ = graded
    nb = nbformat.read(course.path("autograded", "alice", "toy") / "toy.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN_ID)
    assert nb.cells[index].source == ANSWER
    assert "SECRET RUBRIC TEXT" in nb.cells[index - 1].source  # restored from the gradebook: what formgrader renders


@pytest.mark.slow
def test_flags_reach_the_gradebook_and_unsandboxed_is_no_flag(graded):
    course, _, records, flagged = graded
    assert "edited-locked-cell" in records["carol"].flags and not [f for f in records["alice"].flags if f != "unsandboxed"]
    assert flagged == 1
    with course.gradebook() as gb:
        assert gb.find_submission_notebook("toy", "toy", "carol").flagged
        assert not gb.find_submission_notebook("toy", "toy", "alice").flagged
    # a regrade that finds nothing unflags; being unsandboxed alone flags nothing
    clean = {s: StudentRecord(s, "toy", sandboxed=False, notebooks={"toy": NotebookRecord("toy", status="graded")})
             for s in ("alice", "carol")}
    assert flag_in_gradebook(course, "toy", clean) == 0
    with course.gradebook() as gb:
        assert not gb.find_submission_notebook("toy", "toy", "carol").flagged
    assert flag_in_gradebook(course, "toy", records) == 1


@pytest.mark.slow
def test_pending_is_pending_in_feedback_report_and_export(graded, tmp_path, capsys):
    course, _, _, _ = graded
    generate_feedback(course, "toy")
    alice = _text(course.path("feedback", "alice", "toy") / "toy.html")
    bob = _text(course.path("feedback", "bob", "toy") / "toy.html")
    assert "not graded yet" in alice and "Score: nan" not in alice
    assert "Written response (Score: not graded yet / 2.0)" in alice.replace("( Score", "(Score")
    assert ANSWER in alice and "2 point(s) in 1 answer(s) not graded yet" in alice
    assert "not graded yet" not in bob and "Written response (Score: 0.0 / 2.0)" in bob.replace("( Score", "(Score")
    for text in (alice, bob):
        assert "SECRET RUBRIC TEXT" not in text and "MARK SCHEME" not in text and MODEL_ANSWER not in text
        assert "Task (Score" not in text  # the 0-point question is shown as the question, without a score

    report = write_report(course, "toy")
    page = report.read_text()
    assert "Grading queue" in page and "why_commutative (2 points): 2 to grade" in page
    with course.gradebook() as gb:
        alice_nb = gb.find_submission_notebook("toy", "toy", "alice").id
    assert f"/formgrader/submissions/{alice_nb}/#{WRITTEN_ID}" in page
    assert "similarity report" not in page
    (report.parent / "similarity.html").write_text("<html></html>")
    assert "similarity.html" in write_report(course, "toy").read_text()
    summary = summary_text(course, "toy")
    assert re.search(r"^alice\s+\S+ \(\+2 pending\)", summary, re.M) and re.search(r"^bob\s+4/6\s", summary, re.M)

    with pytest.raises(PendingGradesError, match="toy: 2 grade"):
        export_grades(course, tmp_path / "refused.csv")
    assert not (tmp_path / "refused.csv").exists()
    export_grades(course, tmp_path / "pending.csv", allow_pending=True)
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "pending.csv").open())}
    assert rows["alice"]["toy"].startswith("PENDING") and rows["alice"]["total"].startswith("PENDING")
    assert rows["alice"]["needs_manual_grading"] == "1" and "toy: 1 answer(s), 2 point(s)" in rows["alice"]["pending"]
    assert float(rows["bob"]["toy"]) == 4 and rows["bob"]["pending"] == ""

    # the command line: refused (exit 1, nothing written) unless --allow-pending
    from eep590_utils.grading.cli import main

    assert main(["--course", str(course.root), "export", "--out", str(tmp_path / "cli.csv")]) == 1
    assert not (tmp_path / "cli.csv").exists()
    assert "--allow-pending" in capsys.readouterr().err
    assert main(["--course", str(course.root), "export", "--out", str(tmp_path / "cli.csv"), "--allow-pending"]) == 0
    assert "PENDING" in (tmp_path / "cli.csv").read_text()


@pytest.mark.slow
def test_a_manual_grade_and_comment_make_it_final(graded, tmp_path):
    course, _, _, _ = graded
    with course.gradebook() as gb:
        for student, score in (("alice", 1.5), ("carol", 0.5)):
            grade = gb.find_grade(WRITTEN_ID, "toy", "toy", student)
            grade.manual_score, grade.needs_manual_grade = score, False
            gb.find_comment(WRITTEN_ID, "toy", "toy", student).manual_comment = COMMENT
        gb.db.commit()
    assert export_grades(course, tmp_path / "final.csv") == 3
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "final.csv").open())}
    assert float(rows["alice"]["toy"]) == 5.5 and rows["alice"]["needs_manual_grading"] == "0"
    generate_feedback(course, "toy", "alice")
    alice = _text(course.path("feedback", "alice", "toy") / "toy.html")
    assert COMMENT in alice and "not graded yet" not in alice and "1.5 / 2.0" in alice
    assert "why_commutative (2 points)" not in write_report(course, "toy").read_text()
