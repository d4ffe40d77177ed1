"""nbgrader configuration for the EEP590 course kit (read by nbgrader and by `eep590`)."""
import os
import sys

c = get_config()  # noqa: F821 (injected by traitlets)
here = os.path.dirname(os.path.abspath(__file__))

# The course: its id, and this repository as the course directory (source/, release/, submitted/, autograded/).
c.CourseDirectory.course_id = "eep590"
c.CourseDirectory.root = here
# SQLite next to this file by default; set EEP590_DB_URL (e.g. postgresql://user@host/eep590) for many graders.
# (postgresql://... works as written: it is given the psycopg2 driver the kit installs)
from eep590_utils.grading.course import normalize_db_url  # noqa: E402
from eep590_utils.grading.settings import from_env  # noqa: E402 (every limit's default and variable, once)

c.CourseDirectory.db_url = normalize_db_url(os.environ.get("EEP590_DB_URL", "sqlite:///" + os.path.join(here, "gradebook.db")))
# Files that never travel into a release or an autograded copy (judges/: the instructor's judges, see
# docs/authoring.md, never leave source/: no student and no student's kernel can read them).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "judges"]
# Assignments, in release order (nbgrader creates them in the gradebook on generate_assignment).
c.CourseDirectory.assignment_id = ""

# Seconds one cell may run during autograde and validate before it is interrupted and recorded as a timeout.
c.Execute.timeout = from_env("cell_timeout")
# Python kernels only: keep the history in memory so a student's kernel writes nothing to $HOME.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
# Warnings and tqdm progress bars on stderr must not fail a test cell (nbgrader fails cells with stderr).
c.IgnorePattern.pattern = r"(Warning: |warn\(|\d+%\||it/s\]|s/it\])"
# Test cells a student deleted come back from the gradebook and run (they are flagged in the report).
c.OverwriteCells.add_missing_cells = True
# What replaces a solution region in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Keep at most this many lines of each output in autograded notebooks and feedback.
c.LimitOutput.max_lines = 200
# LMS downloads (Canvas style: "<student>_<number>_<number>_<notebook>.ipynb", optional "_late_" marker).
# (nbgrader matches the regexp against the extracted file's whole path, hence the leading folder part)
c.FileNameCollectorPlugin.named_regexp = (
    r"^(?:.*[/\\])?(?P<student_id>[A-Za-z0-9.\-]+)_(?:late_)?(?:\d+_)*(?P<file_id>[A-Za-z0-9_\-]+\.ipynb)$"
)
# Grading limits (eep590 autograde; defaults and meanings in eep590_utils/grading/settings.py): wall time per
# notebook, resident memory per kernel, disk written and processes per notebook, parallel workers (0 = cores),
# warm kernels (1: forked from a sandboxed zygote that imported numpy/torch/matplotlib/eep590_utils once).
for _name in ("notebook_timeout", "memory_limit_mb", "disk_limit_mb", "max_processes", "workers", "warm_kernels"):
    setattr(c.GradingLimits, _name, from_env(_name))

# nbgrader's own commands and formgrader (they have imported nbgrader before reading this file). The `eep590`
# commands read this file without importing nbgrader (report and export never import it: 3 s of CPU) and set
# what they need themselves.
if "nbgrader" in sys.modules:
    # Feedback never shows hidden tests (code or traceback lines) or mark schemes (eep590_utils/grading/feedback.py).
    from eep590_utils.grading.feedback import FEEDBACK_PREPROCESSORS

    c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
    # Plain `nbgrader autograde` stops with a message: test cells are decided by judges (eep590 autograde).
    # (EEP590_ALLOW_PLAIN_AUTOGRADE=1 lets it run, e.g. for benchmarks/grading_throughput.py's baseline.)
    if os.environ.get("EEP590_ALLOW_PLAIN_AUTOGRADE") != "1":
        from nbgrader.converters import Autograde as _Autograde

        from eep590_utils.grading.judge import JudgesRequired

        c.Autograde.autograde_preprocessors = [JudgesRequired] + list(
            _Autograde.class_traits()["autograde_preprocessors"].default())
