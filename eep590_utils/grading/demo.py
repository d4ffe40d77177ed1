"""``eep590 demo``: the whole loop on the bundled sample class, in a scratch course folder.

release every assignment in the course (and check for leaks) -> copy the kit's source and nbgrader
configuration to ``demo-course/`` -> submit ``samples/hw1`` there -> autograde -> feedback -> class
report -> grades CSV -> print a summary table per student and per question. The demo never touches
the course's own gradebook or submissions. Nobody grades the written answers in the demo: they stay
*pending* (``+n pending`` in the summary, ``?`` per question, ``PENDING`` in the CSV); blank ones score 0.
"""
import shutil
import time
from pathlib import Path

from .autograde import autograde
from .course import Course
from .export import export_grades
from .feedback import generate_feedback
from .release import release
from .report import question_text, score_rows, summary_text, write_report
from .sandbox import bwrap_path
from .settings import configured_limits

ASSIGNMENT = "hw1"


def prepare_demo_course(course, dest):
    """A fresh course at ``dest``: the kit's ``source/``, ``nbgrader_config.py`` and the hw1 samples as submissions."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(course.path("source"), dest / "source")
    shutil.copy(course.root / "nbgrader_config.py", dest / "nbgrader_config.py")
    samples = course.root / "samples" / ASSIGNMENT
    for student_dir in sorted(samples.iterdir()):
        shutil.copytree(student_dir, dest / "submitted" / student_dir.name / ASSIGNMENT)
    return Course(dest)


def run_demo(course, dest=None, workers=None, cell_timeout=30, echo=print):
    """Run the demo; return the demo course."""
    started = time.monotonic()
    for assignment in course.assignments():
        checked = release(course, assignment)
        echo(f"release/{assignment}: {len(checked)} notebook(s) generated, no solution or hidden test in them")
    demo = prepare_demo_course(course, dest or course.root / "demo-course")
    echo(f"demo course: {demo.root} ({len(demo.submitted_students(ASSIGNMENT))} sample submissions of {ASSIGNMENT})")
    release(demo, ASSIGNMENT)
    t0 = time.monotonic()
    # the samples are the kit's own notebooks: without bubblewrap the demo still runs them, and says so
    autograde(demo, ASSIGNMENT, workers=workers, limits=configured_limits(demo, cell_timeout=cell_timeout), echo=echo,
              sandbox=bwrap_path() is not None)
    grade_s = time.monotonic() - t0
    feedback = generate_feedback(demo, ASSIGNMENT)
    rows = score_rows(demo, ASSIGNMENT)
    report = write_report(demo, ASSIGNMENT, rows)
    grades = demo.reports_dir / "grades.csv"
    export_grades(demo, grades, allow_pending=True)  # the written answers are not graded yet: marked PENDING
    export_grades(demo, report.parent / "grades.csv", [ASSIGNMENT], allow_pending=True)  # the report links it
    echo("")
    echo(summary_text(demo, ASSIGNMENT, rows))
    for notebook in demo.notebooks(ASSIGNMENT):
        echo(f"\n{notebook} (points per question; ? = awaiting manual grading)")
        echo(question_text(demo, ASSIGNMENT, notebook, rows))
    echo(f"\nautograde: {grade_s:.0f} s; feedback: {len(feedback)} HTML files in {demo.path('feedback')}")
    echo(f"class report: {report} (its grading queue links every pending answer into formgrader)")
    echo(f"grades for the LMS: {grades} (pending grades marked PENDING; `eep590 export` refuses until they are graded)")
    echo(f"demo finished in {time.monotonic() - started:.0f} s")
    return demo
