"""``eep590 export``: grades as CSV ready for an LMS gradebook (one row per student, one column per
assignment, Canvas's "Points Possible" row first), straight from the nbgrader gradebook."""
import csv


def export_grades(course, path, assignments=None):
    """Write the CSV to ``path``; return the number of students written.

    A score is nbgrader's (autograded plus manual grades, minus any late penalty); an assignment a
    student did not submit scores 0. ``needs_manual_grading`` counts the cells still waiting for a grader.
    """
    with course.gradebook() as gb:
        assignments = assignments or sorted(a.name for a in gb.assignments)
        maxima = {a: gb.find_assignment(a).max_score for a in assignments}
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            row = {"student_id": student.id, "last_name": student.last_name or "", "first_name": student.first_name or "",
                   "email": student.email or ""}
            pending = 0
            for assignment in assignments:
                try:
                    submission = gb.find_submission(assignment, student.id)
                except Exception:  # nbgrader.api.MissingEntry: not submitted
                    row[assignment] = 0
                    continue
                row[assignment] = round(submission.score - (submission.late_submission_penalty or 0), 2)
                pending += sum(1 for nb in submission.notebooks for g in nb.grades if g.needs_manual_grade)
            row["total"] = round(sum(row[a] for a in assignments), 2)
            row["needs_manual_grading"] = pending
            rows.append(row)
    fields = ["student_id", "last_name", "first_name", "email", *assignments, "total", "needs_manual_grading"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        possible = {"student_id": "Points Possible", **{a: round(m, 2) for a, m in maxima.items()},
                    "total": round(sum(maxima.values()), 2)}
        writer.writerow(possible)
        writer.writerows(rows)
    return len(rows)
