"""``eep590 export``: grades as CSV ready for an LMS gradebook (one row per student, one column per
assignment, Canvas's "Points Possible" row first), straight from the nbgrader gradebook.

A grade still waiting for a grader (a written answer nobody has graded yet) is *pending*, not 0. An
export of an assignment with pending grades is refused (:class:`PendingGradesError`) unless
``allow_pending``; then each pending cell reads ``PENDING (<score so far>)``, which no LMS import takes for
a number, and the ``pending`` column names what is still to grade, so nothing unfinished looks final.
"""
import csv

from . import gradebook
from .course import CourseError
from .records import UNGRADED, load_records

PENDING = "PENDING"


class PendingGradesError(CourseError):
    """Some grades of the assignments to export still wait for a grader."""


NOT_AUTOGRADED = "(not autograded yet)"  # grade_id shown for a notebook the last autograde left ungraded


def pending_of(course, assignment, grades, maxima):
    """``{student: [(notebook, grade_id, max_score), ...]}`` of one assignment: grades awaiting a grader
    (from ``grades``, its :func:`.gradebook.grades`), and notebooks the last ``eep590 autograde`` left
    ungraded (a run stopped early, a kernel that never started): their gradebook scores are no grade yet
    (grade_id :data:`NOT_AUTOGRADED`; ``maxima``: its :func:`.gradebook.max_scores`)."""
    found = {}
    for student, record in load_records(course, assignment).items():
        cells = [(name, NOT_AUTOGRADED, maxima.get(name, 0)) for name, rec in record.notebooks.items()
                 if rec.status == UNGRADED]
        if cells:
            found[student] = cells
    for grade in grades:
        if grade["needs_manual_grade"] and grade["max_score"]:
            found.setdefault(grade["student"], []).append((grade["notebook"], grade["grade_id"], grade["max_score"]))
    for cells in found.values():
        cells.sort()
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
    known = gradebook.assignments(course)
    unknown = sorted(set(assignments or ()) - set(known))
    if unknown:
        raise CourseError(f"not in the gradebook: {', '.join(unknown)} (it has: {', '.join(known) or 'no assignment yet'})")
    assignments = assignments or known
    grades, maxima, pending = {}, {}, {}
    for assignment in assignments:
        gradebook.settle_question_cells(course, assignment)  # 0-point question cells are never pending
        grades[assignment] = gradebook.grades(course, assignment)
        maxima[assignment] = gradebook.max_scores(course, assignment)
        waiting = pending_of(course, assignment, grades[assignment], maxima[assignment])
        if waiting:
            pending[assignment] = waiting
    if pending and not allow_pending:
        raise PendingGradesError("not exported, grades are still pending:\n  " + "\n  ".join(_describe(pending))
                                 + "\ngrade them in formgrader (`eep590 report <hw>` lists them), or pass --allow-pending "
                                 "to export anyway with those marked PENDING")
    submissions = {a: gradebook.submission_scores(course, a, grades[a]) for a in assignments}
    rows = []
    for student in gradebook.students(course):
        row = {"student_id": student["id"], "last_name": student["last_name"] or "", "first_name": student["first_name"] or "",
               "email": student["email"] or ""}
        count, notes, total, final = 0, [], 0.0, True
        for assignment in assignments:
            if student["id"] not in submissions[assignment]:  # not submitted
                row[assignment] = 0
                continue
            score, penalty = submissions[assignment][student["id"]]
            score = round(score - penalty, 2)
            total += score
            cells = pending.get(assignment, {}).get(student["id"], [])
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
        points = {a: sum(maxima[a].values()) for a in assignments}
        possible = {"student_id": "Points Possible", **{a: round(m, 2) for a, m in points.items()},
                    "total": round(sum(points.values()), 2)}
        writer.writerow(possible)
        writer.writerows(rows)
    return len(rows)
