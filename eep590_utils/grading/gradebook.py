"""The gradebook's grades read, and its 0-point question cells settled, in a few SQL statements.

``eep590 report`` and ``eep590 export`` only read scores: they query the tables nbgrader 0.9.6 writes
(SQLAlchemy Core, SQLite or PostgreSQL) instead of importing ``nbgrader.api``, which costs seconds of CPU
before the first query. ``tests/grading/test_gradebook.py`` checks every function here against
nbgrader's own ORM on the same gradebook (manual grades, extra credit, late penalties, task cells).
A score is nbgrader's: the manual score if a grader gave one, else the autograder's, plus any extra
credit, else 0. A gradebook that does not exist yet reads as empty (nothing is created).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from .course import Course

_GRADES = """
SELECT st.id AS student, nb.name AS notebook, bc.name AS grade_id, bc.type AS cell_kind,
       COALESCE(gc.cell_type, tc.cell_type) AS cell_type, COALESCE(gc.max_score, tc.max_score, 0.0) AS max_score,
       g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade,
       sn.id AS submission_notebook_id, sn.flagged
FROM grade g
JOIN submitted_notebook sn ON g.notebook_id = sn.id
JOIN notebook nb ON sn.notebook_id = nb.id
JOIN submitted_assignment sa ON sn.assignment_id = sa.id
JOIN assignment a ON sa.assignment_id = a.id
JOIN student st ON sa.student_id = st.id
JOIN base_cell bc ON g.cell_id = bc.id
LEFT JOIN grade_cells gc ON gc.id = bc.id
LEFT JOIN task_cells tc ON tc.id = bc.id
WHERE a.name = :assignment
"""
_SETTLE = """
UPDATE grade SET auto_score = 0.0, needs_manual_grade = :no
WHERE manual_score IS NULL AND (needs_manual_grade = :yes OR auto_score IS NULL)
  AND cell_id IN (SELECT tc.id FROM task_cells tc
                  JOIN base_cell bc ON bc.id = tc.id
                  JOIN notebook nb ON bc.notebook_id = nb.id
                  JOIN assignment a ON nb.assignment_id = a.id
                  WHERE a.name = :assignment AND COALESCE(tc.max_score, 0.0) = 0.0)
"""
_MAX_SCORES = """
SELECT nb.name AS notebook, COALESCE(SUM(COALESCE(gc.max_score, tc.max_score, 0.0)), 0.0) AS max_score
FROM notebook nb
JOIN assignment a ON nb.assignment_id = a.id
LEFT JOIN base_cell bc ON bc.notebook_id = nb.id
LEFT JOIN grade_cells gc ON gc.id = bc.id
LEFT JOIN task_cells tc ON tc.id = bc.id
WHERE a.name = :assignment
GROUP BY nb.name
"""
_SUBMITTED = """
SELECT sa.student_id AS student, COALESCE(SUM(sn.late_submission_penalty), 0.0) AS late_penalty
FROM submitted_assignment sa
JOIN assignment a ON sa.assignment_id = a.id
LEFT JOIN submitted_notebook sn ON sn.assignment_id = sa.id
WHERE a.name = :assignment
GROUP BY sa.student_id
"""


def score(row: dict) -> float:
    """nbgrader's ``Grade.score`` of one grade row: manual, else automatic (each plus extra credit), else 0."""
    base = row["manual_score"] if row["manual_score"] is not None else row["auto_score"]
    if base is None:
        return 0.0
    return float(base) + float(row["extra_credit"] or 0.0)


def _missing_sqlite_file(url: str) -> bool:
    if not url.startswith("sqlite:///"):
        return False
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path not in ("", ":memory:") and not Path(path).is_file()


@contextmanager
def _connection(course: Course, write: bool = False) -> Iterator:
    """A connection to the course's gradebook, or None where there is no gradebook yet."""
    if _missing_sqlite_file(course.db_url):
        yield None
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(course.db_url)
    try:
        with (engine.begin() if write else engine.connect()) as connection:
            yield connection if sqlalchemy.inspect(connection).has_table("grade") else None
    finally:
        engine.dispose()


def _rows(course: Course, query: str, **params) -> list[dict]:
    import sqlalchemy

    with _connection(course) as connection:
        if connection is None:
            return []
        return [dict(row._mapping) for row in connection.execute(sqlalchemy.text(query), params)]


def grades(course: Course, assignment: str) -> list[dict]:
    """One dict per grade of ``assignment`` in the gradebook: ``student``, ``notebook``, ``grade_id``,
    ``cell_kind`` (GradeCell or TaskCell), ``cell_type`` (code or markdown), ``max_score``, ``auto_score``,
    ``manual_score``, ``extra_credit``, ``score`` (see :func:`score`), ``needs_manual_grade``,
    ``submission_notebook_id``, ``flagged``."""
    rows = _rows(course, _GRADES, assignment=assignment)
    for row in rows:
        row["score"] = score(row)
        row["max_score"] = float(row["max_score"] or 0.0)
        row["needs_manual_grade"] = bool(row["needs_manual_grade"])
        row["flagged"] = bool(row["flagged"])
    return rows


def settle_question_cells(course: Course, assignment: str) -> int:
    """Score 0 the ungraded 0-point task cells (the question cells of written answers) of every submission
    of ``assignment``; return how many grades changed. Grades a grader entered are never touched."""
    import sqlalchemy

    with _connection(course, write=True) as connection:
        if connection is None:
            return 0
        return connection.execute(sqlalchemy.text(_SETTLE), {"assignment": assignment, "yes": True, "no": False}).rowcount


def assignments(course: Course) -> list[str]:
    """Assignment names in the gradebook, sorted."""
    return sorted(row["name"] for row in _rows(course, "SELECT name FROM assignment"))


def max_scores(course: Course, assignment: str) -> dict[str, float]:
    """``{notebook: points}`` of an assignment (empty when the gradebook does not know it)."""
    return {row["notebook"]: float(row["max_score"]) for row in _rows(course, _MAX_SCORES, assignment=assignment)}


def students(course: Course) -> list[dict]:
    """``[{"id", "first_name", "last_name", "email"}]`` of every student in the gradebook, by id."""
    return _rows(course, "SELECT id, first_name, last_name, email FROM student ORDER BY id")


def submission_scores(course: Course, assignment: str, grade_rows: list[dict] | None = None) -> dict[str, tuple[float, float]]:
    """``{student: (score, late penalty)}`` of every submission of ``assignment`` in the gradebook
    (nbgrader's ``SubmittedAssignment.score`` and ``late_submission_penalty``); ``grade_rows``: its
    :func:`grades` when the caller has them."""
    scores = {row["student"]: [0.0, float(row["late_penalty"])] for row in _rows(course, _SUBMITTED, assignment=assignment)}
    for row in grades(course, assignment) if grade_rows is None else grade_rows:
        scores[row["student"]][0] += row["score"]
    return {student: (total, penalty) for student, (total, penalty) in scores.items()}
