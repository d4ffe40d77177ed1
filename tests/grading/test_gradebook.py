"""The gradebook read with SQL agrees with nbgrader's own ORM on the same gradebook: scores with manual
grades, extra credit and late penalties, task cells, missing submissions; and settling written questions
changes only what it should. On SQLite, and on PostgreSQL."""
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from eep590_utils.grading import gradebook

sys.path.insert(0, str(Path(__file__).parent))
from gradebook_data import course_at, fill  # noqa: E402


def orm_grades(db_url, assignment):
    with Gradebook(db_url, "c") as gb:
        return sorted(
            (s.student.id, nb.name, g.name, g.cell.type, g.cell.cell_type, float(g.max_score), g.auto_score, g.manual_score,
             float(g.score), bool(g.needs_manual_grade), nb.id, bool(nb.flagged))
            for s in gb.assignment_submissions(assignment) for nb in s.notebooks for g in nb.grades)


def sql_grades(course, assignment):
    return sorted(
        (g["student"], g["notebook"], g["grade_id"], g["cell_kind"], g["cell_type"], g["max_score"], g["auto_score"],
         g["manual_score"], g["score"], g["needs_manual_grade"], g["submission_notebook_id"], g["flagged"])
        for g in gradebook.grades(course, assignment))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def template(request, tmp_path_factory):
    """The filled gradebook, made once per kind of database: ``(postgres server or None, file or database name)``."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("gradebook") / "filled.db"
        fill(f"sqlite:///{path}")
        return None, path
    server = request.getfixturevalue("postgres_server")
    name = f"filled_{uuid.uuid4().hex[:12]}"
    fill(server.create(name))
    return server, name


@pytest.fixture
def filled(template, tmp_path):
    """A copy of the filled gradebook (a test may change it): ``(course, db_url)``."""
    server, source = template
    if server is None:
        shutil.copy(source, tmp_path / "gradebook.db")
        db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    else:
        db_url = server.create(f"eep590_{uuid.uuid4().hex[:12]}", template=source)
    return course_at(tmp_path / "course", db_url), db_url


def test_grades_are_nbgraders(filled):
    course, db_url = filled
    for assignment in ("hw1", "hw2", "unknown"):
        assert sql_grades(course, assignment) == orm_grades(db_url, assignment)
    rows = {(g["student"], g["grade_id"]): g for g in gradebook.grades(course, "hw1")}
    assert rows[("ann", "q2")]["score"] == 3.0  # manual 2.5 + extra 0.5 (the ORM agrees: a real check of the rule)
    assert rows[("ann", "q3")]["score"] == 0.5  # manual over automatic
    assert rows[("cy", "q2")]["score"] == 0.0 and rows[("cy", "q2")]["needs_manual_grade"]


def test_totals_penalties_maxima_and_students_are_nbgraders(filled):
    course, db_url = filled
    with Gradebook(db_url, "c") as gb:
        assert gradebook.assignments(course) == sorted(a.name for a in gb.assignments) == ["hw1", "hw2"]
        for assignment in ("hw1", "hw2"):
            expected = {s.student.id: (pytest.approx(s.score), pytest.approx(s.late_submission_penalty))
                        for s in gb.assignment_submissions(assignment)}
            assert gradebook.submission_scores(course, assignment) == expected
            assert gradebook.max_scores(course, assignment) == {nb.name: nb.max_score
                                                                for nb in gb.find_assignment(assignment).notebooks}
        assert gradebook.students(course) == [{"id": s.id, "first_name": s.first_name, "last_name": s.last_name,
                                               "email": s.email} for s in sorted(gb.students, key=lambda s: s.id)]
    assert gradebook.submission_scores(course, "hw1")["bo"] == (pytest.approx(1 + 3), pytest.approx(1.75))
    assert gradebook.max_scores(course, "hw1") == {"a": 5.0, "b": 5.5}
    assert gradebook.max_scores(course, "unknown") == {} and gradebook.submission_scores(course, "unknown") == {}


def test_settling_scores_only_untouched_zero_point_questions(filled):
    course, db_url = filled
    before = {row[:3]: row for row in orm_grades(db_url, "hw1")}
    assert gradebook.settle_question_cells(course, "hw1") == 2  # ann's and cy's question cells (bo's was graded)
    after = {row[:3]: row for row in orm_grades(db_url, "hw1")}
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("ann", "a", "question"), ("cy", "a", "question")}
    for key in changed:
        assert after[key][6] == 0.0 and not after[key][9]  # auto_score 0, no longer awaiting a grader
    assert before[("bo", "a", "question")] == after[("bo", "a", "question")]
    assert after[("cy", "b", "task")][9]  # a task cell with points still waits for its grader
    assert gradebook.settle_question_cells(course, "hw1") == 0


def test_a_missing_gradebook_reads_empty_and_is_not_created(tmp_path):
    course = course_at(tmp_path / "course", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert gradebook.grades(course, "hw1") == [] and gradebook.assignments(course) == []
    assert gradebook.settle_question_cells(course, "hw1") == 0 and gradebook.students(course) == []
    assert not (tmp_path / "nothing.db").exists()
