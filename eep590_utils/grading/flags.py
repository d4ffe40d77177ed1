"""The kit's flags and written-question cells, in the nbgrader gradebook, where formgrader shows them.

``eep590 autograde`` records what it finds (corrupt or missing notebooks, timeouts, memory, crashes,
edited or deleted test cells, suspicious code) in a :class:`~.autograde.StudentRecord` per student.
:func:`flag_in_gradebook` copies that verdict into nbgrader's ``SubmittedNotebook.flagged``, the
"Flagged?" column of formgrader's submission lists, and clears the flag of submissions that no
longer earn one (a regrade that finds nothing).

It also settles the *question* cells of written answers (see ``docs/authoring.md``): a written
question is a locked nbgrader task cell worth 0 points (it carries the mark scheme, so graders see the
rubric beside the answer), followed by the manually graded answer cell that carries the points.
nbgrader creates a grade for every task cell and marks it "needs manual grade" forever; a 0-point
grade can change nothing, so :func:`.gradebook.settle_question_cells` scores it 0 and takes it off formgrader's
to-do list. Grades a grader has entered are never touched.
"""
from . import gradebook


def flag_reasons(record):
    """``{notebook: [kind, ...]}`` for the notebooks of ``record`` (a ``StudentRecord``) that deserve a
    TA's look; kinds of the whole submission (e.g. an unsafe file beside the notebooks) are listed under
    ``None`` and flag every notebook. "unsandboxed" is no flag: the report says it once per class."""
    reasons = {name: rec.flags for name, rec in record.notebooks.items() if rec.flags}
    per_notebook = {kind for kinds in reasons.values() for kind in kinds}
    whole = sorted(set(record.flags) - per_notebook - {"unsandboxed"})
    if whole:
        reasons[None] = whole
    return reasons


def flag_in_gradebook(course, assignment, records):
    """Set ``SubmittedNotebook.flagged`` for every notebook of every student of ``records``
    (``{student: StudentRecord}``) that has flags, unflag the others, and settle the 0-point question
    cells of written answers (:func:`.gradebook.settle_question_cells`). Being graded without a sandbox is no
    flag (the report says it once, at the top). Returns the number of notebooks flagged."""
    flagged = 0
    with course.gradebook() as gb:
        for student, record in sorted(records.items()):
            try:
                submission = gb.find_submission(assignment, student)
            except Exception:  # nbgrader.api.MissingEntry: never reached the gradebook
                continue
            reasons = flag_reasons(record)
            whole = None in reasons
            for notebook in submission.notebooks:
                flag = whole or notebook.name in reasons
                notebook.flagged = bool(flag)
                flagged += bool(flag)
        gb.db.commit()
    gradebook.settle_question_cells(course, assignment)
    return flagged


__all__ = ["flag_in_gradebook", "flag_reasons"]
