"""The gradebook read with SQL agrees with nbgrader's own ORM on the same gradebook: scores with manual
grades, extra credit and late penalties, task cells, missing submissions; and settling written questions
changes only what it should. On SQLite, and on PostgreSQL."""
import datetime

import pytest
from nbgrader.api import Gradebook

from eep590_utils.grading import gradebook
from eep590_utils.grading.course import Course


def _course(root, db_url):
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = 'c'\n"
                                             f"c.CourseDirectory.db_url = {db_url!r}\n")
    return Course(root)


def fill(db_url):
    """Two assignments, three notebooks, grade and task cells (one a 0-point question), four students:
    manual grades over automatic ones, extra credit, a late penalty, a graded question cell, a missing
    submission, a flagged notebook."""
    with Gradebook(db_url, "c") as gb:
        for name in ("hw1", "hw2"):
            gb.add_assignment(name, duedate=datetime.datetime(2026, 1, 1))
        gb.add_notebook("a", "hw1")
        gb.add_notebook("b", "hw1")
        gb.add_notebook("c", "hw2")
        gb.add_grade_cell("q1", "a", "hw1", max_score=2, cell_type="code")
        gb.add_grade_cell("q2", "a", "hw1", max_score=3, cell_type="markdown")
        gb.add_solution_cell("q2", "a", "hw1")
        gb.add_task_cell("question", "a", "hw1", max_score=0, cell_type="markdown")
        gb.add_task_cell("task", "b", "hw1", max_score=4, cell_type="markdown")
        gb.add_grade_cell("q3", "b", "hw1", max_score=1.5, cell_type="code")
        gb.add_grade_cell("q4", "c", "hw2", max_score=5, cell_type="code")
        for student, first in (("ann", "Ann"), ("bo", None), ("cy", "Cy"), ("dee", "Dee")):
            gb.add_student(student, first_name=first, last_name="L" + student, email=f"{student}@uni.edu")
        for student in ("ann", "bo", "cy"):
            gb.add_submission("hw1", student)
        gb.add_submission("hw2", "ann")
        grades = {  # (cell, notebook, student): (auto, manual, extra, needs manual grade)
            ("q1", "a", "ann"): (2, None, None, False), ("q2", "a", "ann"): (None, 2.5, 0.5, False),
            ("task", "b", "ann"): (None, None, None, True), ("q3", "b", "ann"): (1.5, 0.5, None, False),
            ("q1", "a", "bo"): (0, None, 1, False), ("q2", "a", "bo"): (None, None, None, True),
            ("question", "a", "bo"): (None, 0, None, False),  # a grader touched the question cell: left alone
            ("q3", "b", "bo"): (None, None, None, True), ("task", "b", "bo"): (None, 3, None, False),
            ("q1", "a", "cy"): (1, None, None, False),
        }
        for (cell, notebook, student), (auto, manual, extra, needs) in grades.items():
            grade = gb.find_grade(cell, notebook, "hw1", student)
            grade.auto_score, grade.manual_score, grade.extra_credit, grade.needs_manual_grade = auto, manual, extra, needs
        task = gb.find_grade("task", "b", "hw1", "cy")
        task.auto_score, task.needs_manual_grade = None, True
        gb.find_grade("q4", "c", "hw2", "ann").auto_score = 4
        gb.find_submission_notebook("a", "hw1", "bo").late_submission_penalty = 1.25
        gb.find_submission_notebook("b", "hw1", "bo").late_submission_penalty = 0.5
        gb.find_submission_notebook("b", "hw1", "cy").flagged = True
        gb.db.commit()


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def filled(request, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres")
    fill(db_url)
    return _course(tmp_path / "course", db_url), db_url


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
    course = _course(tmp_path / "course", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert gradebook.grades(course, "hw1") == [] and gradebook.assignments(course) == []
    assert gradebook.settle_question_cells(course, "hw1") == 0 and gradebook.students(course) == []
    assert not (tmp_path / "nothing.db").exists()
