"""The ``eep590`` command: the instructor's and TAs' side of the kit.

    eep590 release hw1 | --all          regenerate release/ and check it leaks nothing
    eep590 collect hw1 --zip canvas.zip | --folder downloads/
    eep590 autograde hw1 [--workers N] [--student S ...] [--cell-timeout s] [--notebook-timeout s] [--memory-mb M]
                                        [--ray auto|ADDRESS|local]   the notebooks as tasks on a Ray cluster
    eep590 feedback hw1 [--student S]   HTML feedback in feedback/<student>/hw1/
    eep590 report hw1                   reports/hw1/index.html (+ PNGs) and a summary table
    eep590 similarity hw1 [--threshold 0.5] [--workers N]   answers that look alike: reports/hw1/similarity.html
    eep590 export [--out grades.csv] [--allow-pending]   grades for the LMS (refused while grades are pending)
    eep590 demo                         the whole loop on the bundled sample class
"""
from __future__ import annotations

import argparse
import os
import sys

from .course import Course, CourseError
from .settings import configured_limits, help_text


def _ensure_tools_on_path() -> None:
    """nbgrader shells out to ``alembic`` and ``jupyter``: put this Python's bin/ on PATH."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eep590", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", help="course directory (default: the one holding nbgrader_config.py)")
    parser.add_argument("--db-url", help="gradebook URL (default: nbgrader_config.py, i.e. $EEP590_DB_URL or SQLite)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate release/<hw> from source/<hw> and check for leaks")
    p.add_argument("assignment", nargs="?")
    p.add_argument("--all", action="store_true", help="every assignment in source/")

    p = sub.add_parser("collect", help="bring submissions into submitted/")
    p.add_argument("assignment")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--zip", help="an LMS download: a zip of <student>_..._<notebook>.ipynb files")
    group.add_argument("--folder", help="a folder of <student>/[<hw>/]*.ipynb")

    p = sub.add_parser("autograde", help="grade submissions in parallel, sandboxed")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--workers", type=int, help=help_text("workers"))
    p.add_argument("--cell-timeout", type=float, help=help_text("cell_timeout"))
    p.add_argument("--notebook-timeout", type=float, help=help_text("notebook_timeout"))
    p.add_argument("--memory-mb", type=int, help=help_text("memory_limit_mb"))
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the notebooks as tasks on a Ray cluster: auto (the one `ray start` joined), host:port, "
                        "ray://host:10001, or local (start Ray here); default: GradingLimits.ray_address, else this "
                        "machine's threads (docs/cluster.md)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap (trusted notebooks only; without it, autograde refuses to "
                        "run where bubblewrap is missing)")

    p = sub.add_parser("feedback", help="HTML feedback per student")
    p.add_argument("assignment")
    p.add_argument("--student")

    p = sub.add_parser("report", help="class report for TAs")
    p.add_argument("assignment")

    p = sub.add_parser("similarity", help="answers that look alike, per question (similarity, not misconduct)")
    p.add_argument("assignment")
    p.add_argument("--threshold", type=float, default=None, help="list pairs at least this similar (default 0.5)")
    p.add_argument("--workers", type=int, help="questions compared at once (default: cores)")

    p = sub.add_parser("export", help="grades CSV for the LMS")
    p.add_argument("--out", default="grades.csv")
    p.add_argument("--assignment", action="append", help="only these assignments (repeatable)")
    p.add_argument("--allow-pending", action="store_true",
                   help="export even with grades awaiting manual grading (those cells read PENDING)")

    p = sub.add_parser("demo", help="the whole loop on the bundled sample class")
    p.add_argument("--dir", help="scratch course folder (default: <course>/demo-course)")
    p.add_argument("--workers", type=int)
    p.add_argument("--cell-timeout", type=float, default=30)
    return parser


def run(args: argparse.Namespace) -> None:
    # each command imports what it needs: report and export start without nbgrader, nbformat or torch
    from . import export, report

    course = Course(args.course, db_url=args.db_url)
    if args.command == "release":
        from . import release

        if not args.all and not args.assignment:
            raise CourseError("name an assignment or give --all")
        for assignment in course.assignments() if args.all else [args.assignment]:
            checked = release.release(course, assignment)
            print(f"release/{assignment}: {', '.join(p.name for p in checked)}: no solution or hidden test leaked")
    elif args.command == "collect":
        from . import collect

        if args.zip:
            students = collect.collect_zip(course, args.assignment, args.zip)
        else:
            students = collect.collect_folder(course, args.assignment, args.folder)
        print(f"{len(students)} submission(s) of {args.assignment} in {course.path('submitted')}: {', '.join(students)}")
    elif args.command == "autograde":
        from . import autograde
        from .cluster import make_cluster

        limits = configured_limits(course, args.cell_timeout, args.notebook_timeout, args.memory_mb)
        cluster = make_cluster(args.ray, echo=print)
        try:
            autograde.autograde(course, args.assignment, students=args.student, workers=args.workers, limits=limits,
                                sandbox=not args.no_sandbox, cluster=cluster)
        finally:
            if cluster is not None:
                cluster.close()
        print(report.summary_text(course, args.assignment))
    elif args.command == "feedback":
        from . import feedback

        files = feedback.generate_feedback(course, args.assignment, args.student)
        print(f"{len(files)} feedback file(s) in {course.path('feedback')}")
    elif args.command == "report":
        rows = report.score_rows(course, args.assignment)
        path = report.write_report(course, args.assignment, rows)
        export.export_grades(course, path.parent / "grades.csv", [args.assignment], allow_pending=True)
        print(report.summary_text(course, args.assignment, rows))
        print(f"class report: {path}")
    elif args.command == "similarity":
        from . import similarity

        threshold = similarity.THRESHOLD if args.threshold is None else args.threshold
        path = similarity.write_report(course, args.assignment, threshold=threshold, workers=args.workers)
        print(f"similarity report (similarity, not misconduct): {path}")
    elif args.command == "export":
        count = export.export_grades(course, args.out, args.assignment, allow_pending=args.allow_pending)
        print(f"{count} student(s) written to {args.out}")
    elif args.command == "demo":
        from . import demo

        demo.run_demo(course, args.dir, workers=args.workers, cell_timeout=args.cell_timeout)


def main(argv: list[str] | None = None) -> int:
    _ensure_tools_on_path()
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (CourseError, ValueError, FileNotFoundError) as error:
        print(f"eep590 {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: kernels killed, temporary folders removed
        print(f"eep590 {args.command}: stopped ({stop or 'interrupted'}); what was not finished is recorded as not "
              "graded yet: run the command again", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
