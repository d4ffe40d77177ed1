"""A small gradebook with every case the SQL reader must get right, for tests/grading/test_gradebook.py
and test_course.py."""
import datetime

from nbgrader.api import Gradebook

from eep590_utils.grading.course import Course


def course_at(root, db_url):
    """A course folder at ``root`` whose gradebook is ``db_url``."""
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
