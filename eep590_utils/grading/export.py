"""``eep590 export``: grades as CSV ready for an LMS gradebook (one row per student, one column per
assignment, Canvas's "Points Possible" row first), straight from the nbgrader gradebook.

A grade still waiting for a grader (a written answer nobody has graded yet) is *pending*, not 0. An
export of an assignment with pending grades is refused (:class:`PendingGradesError`) unless
``allow_pending``; then each pending cell reads ``PENDING (<score so far>)``, which no LMS import takes for
a number, and the ``pending`` column names what is still to grade, so nothing unfinished looks final.
"""
import csv

from .course import CourseError

PENDING = "PENDING"


class PendingGradesError(CourseError):
    """Some grades of the assignments to export still wait for a grader."""


NOT_AUTOGRADED = "(not autograded yet)"  # grade_id shown for a notebook the last autograde left ungraded


def pending_grades(course, assignments=None):
    """``{assignment: {student: [(notebook, grade_id, max_score), ...]}}``: grades awaiting a grader, and
    notebooks the last ``eep590 autograde`` left ungraded (a run stopped early, a kernel that never
    started): their gradebook scores are no grade yet (grade_id :data:`NOT_AUTOGRADED`)."""
    from .records import UNGRADED, load_records

    found = {}
    with course.gradebook() as gb:
        assignments = assignments or sorted(a.name for a in gb.assignments)
        for assignment in assignments:
            try:
                maxima = {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}
            except Exception:  # nbgrader.api.MissingEntry: unknown assignment
                continue
            for student, record in load_records(course, assignment).items():
                cells = [(name, NOT_AUTOGRADED, maxima.get(name, 0)) for name, rec in record.notebooks.items()
                         if rec.status == UNGRADED]
                if cells:
                    found.setdefault(assignment, {})[student] = cells
            try:
                submissions = gb.assignment_submissions(assignment)
            except Exception:  # nbgrader.api.MissingEntry: unknown assignment
                continue
            for submission in submissions:
                cells = [(nb.name, g.name, g.max_score) for nb in submission.notebooks for g in nb.grades
                         if g.needs_manual_grade and g.max_score]
                if cells:
                    mine = found.setdefault(assignment, {}).setdefault(submission.student.id, [])
                    mine[:] = sorted(mine + cells)
    return found


def _describe(pending):
    lines = []
    for assignment, students in sorted(pending.items()):
        cells = sum(len(c) for c in students.values())
        points = sum(p for c in students.values() for _, _, p in c)
        lines.append(f"{assignment}: {cells} grade(s) worth {points:g} point(s) await manual grading, for "
                     f"{len(students)} student(s) ({', '.join(sorted(students)[:8])}{', ...' if len(students) > 8 else ''})")
    return lines


def export_grades(course, path, assignments=None, allow_pending=False):
    """Write the CSV to ``path``; return the number of students written.

    A score is nbgrader's (autograded plus manual grades, minus any late penalty); an assignment a
    student did not submit scores 0. ``needs_manual_grading`` counts the cells still waiting for a grader.
    With pending grades, raise :class:`PendingGradesError` (nothing written) unless ``allow_pending``.
    """
    from .flags import settle_all_question_cells

    with course.gradebook() as gb:
        assignments = assignments or sorted(a.name for a in gb.assignments)
    for assignment in assignments:
        settle_all_question_cells(course, assignment)  # 0-point question cells are never pending
    pending = pending_grades(course, assignments)
    if pending and not allow_pending:
        raise PendingGradesError("not exported, grades are still pending:\n  " + "\n  ".join(_describe(pending))
                                 + "\ngrade them in formgrader (`eep590 report <hw>` lists them), or pass --allow-pending "
                                 "to export anyway with those marked PENDING")
    with course.gradebook() as gb:
        maxima = {a: gb.find_assignment(a).max_score for a in assignments}
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            row = {"student_id": student.id, "last_name": student.last_name or "", "first_name": student.first_name or "",
                   "email": student.email or ""}
            count, notes, total, final = 0, [], 0.0, True
            for assignment in assignments:
                try:
                    submission = gb.find_submission(assignment, student.id)
                except Exception:  # nbgrader.api.MissingEntry: not submitted
                    row[assignment] = 0
                    continue
                score = round(submission.score - (submission.late_submission_penalty or 0), 2)
                total += score
                cells = pending.get(assignment, {}).get(student.id, [])
                if cells:
                    final = False
                    count += len(cells)
                    notes.append(f"{assignment}: {len(cells)} answer(s), {sum(p for _, _, p in cells):g} point(s)")
                    row[assignment] = f"{PENDING} ({score:g} so far)"
                else:
                    row[assignment] = score
            row["total"] = round(total, 2) if final else f"{PENDING} ({total:g} so far)"
            row["needs_manual_grading"] = count
            row["pending"] = "; ".join(notes)
            rows.append(row)
    fields = ["student_id", "last_name", "first_name", "email", *assignments, "total", "needs_manual_grading", "pending"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        possible = {"student_id": "Points Possible", **{a: round(m, 2) for a, m in maxima.items()},
                    "total": round(sum(maxima.values()), 2)}
        writer.writerow(possible)
        writer.writerows(rows)
    return len(rows)
