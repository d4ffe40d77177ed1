"""``eep590 autograde``: grade a whole class in parallel, each notebook in its own sandboxed kernel.

nbgrader's autograde runs one notebook after another in one process, gives a whole student 0 when one
of their notebooks is corrupt, fails the submission on a loop that ignores SIGINT, and lets student
code read the course directory. Here the work is split in three phases around nbgrader's own
preprocessors:

1. **stage and sanitize** (serial): each submission is copied to a private staging folder; notebooks
   that are not readable notebooks are left out with the reason recorded (nbgrader then scores them
   0 as missing, and the student's other notebooks are graded normally); locked cells that were
   edited or deleted are recorded; nbgrader's sanitize step (``ClearOutput``, ``OverwriteCells`` —
   which restores edited and deleted test cells from the gradebook —, ...) writes
   ``autograded/<student>/<hw>/``.
2. **execute** (parallel, ``workers`` threads): every notebook runs in its own kernel, in a private
   copy of its student's folder, inside bubblewrap (:mod:`.sandbox`), within the per-cell timeout,
   the per-notebook wall time and the memory limit (:mod:`.execute`). No gradebook access here.
3. **score** (serial): nbgrader's ``IgnorePattern``, ``LimitOutput``, ``SaveAutoGrades`` and
   ``AssignLatePenalties`` write the grades, one notebook at a time, in the main thread: concurrent
   workers can neither lose nor duplicate a grade, with SQLite or PostgreSQL.

Every run regrades from scratch (idempotent). A JSON record per student (problems, flags, timings)
goes to ``reports/<hw>/records/`` for the class report.
"""
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                    SaveAutoGrades)
from nbgrader.utils import capture_log, temp_attrs
from traitlets import Integer
from traitlets.config import Configurable

import eep590_utils

from .course import CourseError
from .execute import Limits, NotebookRunner
from .sandbox import bwrap_path
from .scan import scan_notebook

log = logging.getLogger("eep590.autograde")

UNSANDBOXED_WARNING = (
    "WARNING: bubblewrap (bwrap) is not installed, so student code runs UNSANDBOXED: it can read the "
    "course directory (source/, the gradebook, other submissions) and reach the network. "
    "Install it (Debian/Ubuntu: apt-get install bubblewrap) before grading real submissions."
)
SCORE_PREPROCESSORS = (IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties,
                       CheckCellMetadata)


class GradingLimits(Configurable):
    """Limits of ``eep590 autograde``, set in ``nbgrader_config.py`` (the per-cell timeout is ``Execute.timeout``)."""

    notebook_timeout = Integer(900, help="Seconds one notebook may run in all, restarts included").tag(config=True)
    memory_limit_mb = Integer(4096, help="Resident memory of one kernel and its children, in MiB").tag(config=True)
    workers = Integer(0, help="Notebooks graded at once; 0 means the number of cores").tag(config=True)


def configured_limits(course, cell_timeout=None, notebook_timeout=None, memory_limit_mb=None):
    """:class:`Limits` from the course configuration, with any argument given overriding it."""
    conf = GradingLimits(config=course.config)
    return Limits(cell_timeout=float(cell_timeout or course.config.Execute.get("timeout", 120)),
                  notebook_timeout=float(notebook_timeout or conf.notebook_timeout),
                  memory_bytes=int(memory_limit_mb or conf.memory_limit_mb) * 2**20)


@dataclass
class NotebookRecord:
    """What happened to one notebook of one submission."""

    notebook: str
    status: str = "graded"  # graded | missing | corrupt | failed
    reason: str = ""  # why it was not graded (missing, corrupt, failed)
    problems: list = field(default_factory=list)  # [kind, message]: timeout, memory, crash, wall-time, not-run
    tampered: list = field(default_factory=list)  # [kind, grade_id]: edited-locked-cell, deleted-cell
    suspicious: list = field(default_factory=list)  # scan.scan_notebook entries
    kernel_start_s: float = 0.0
    seconds: dict = field(default_factory=dict)  # role (given, student, test) -> seconds of execution
    restarts: int = 0


@dataclass
class StudentRecord:
    student: str
    assignment: str
    sandboxed: bool
    notebooks: dict = field(default_factory=dict)  # name -> NotebookRecord

    @property
    def flags(self):
        """Sorted kinds of everything worth a TA's look in this submission."""
        kinds = set()
        for rec in self.notebooks.values():
            if rec.status != "graded":
                kinds.add(rec.status)
            kinds.update(kind for kind, _ in rec.problems)
            kinds.update(kind for kind, _ in rec.tampered)
            if rec.suspicious:
                kinds.add("suspicious-code")
        if not self.sandboxed:
            kinds.add("unsandboxed")
        return sorted(kinds)

    def to_json(self):
        data = asdict(self)
        data["flags"] = self.flags
        return data

    @classmethod
    def from_json(cls, data):
        notebooks = {name: NotebookRecord(**rec) for name, rec in data["notebooks"].items()}
        return cls(student=data["student"], assignment=data["assignment"], sandboxed=data["sandboxed"],
                   notebooks=notebooks)


def records_dir(course, assignment):
    return course.reports_dir / assignment / "records"


def load_records(course, assignment):
    """``{student: StudentRecord}`` from the last autograde of ``assignment``."""
    directory = records_dir(course, assignment)
    records = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = StudentRecord.from_json(json.loads(path.read_text()))
        records[record.student] = record
    return records


# ----------------------------------------------------------------------------------------------------------------
# Phase 1: stage and sanitize


def read_submitted_notebook(path):
    """The notebook at ``path``, or raise ``ValueError`` saying in words why it cannot be graded."""
    try:
        with open(path, encoding="utf-8") as handle:
            nb = nbformat.read(handle, as_version=4)
    except UnicodeDecodeError as error:
        raise ValueError(f"not a text file (byte {error.start} is not UTF-8)") from None
    except Exception as error:  # json.JSONDecodeError, nbformat.reader.NotJSONError, ...
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"not a readable notebook: {message[:200]}") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook: it has no list of cells")
    for index, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"not a valid notebook: cell {index} has no valid cell_type")
        if not isinstance(cell.get("source", ""), str):
            raise ValueError(f"not a valid notebook: cell {index} has a source that is not text")
    return nb


def find_tampering(nb, locked_sources):
    """``[(kind, grade_id)]`` for locked cells (``{grade_id: source}`` from the gradebook) that the
    student edited or deleted; nbgrader restores them before grading, this only records it."""
    present = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            present[grade_id] = cell.get("source", "")
    found = []
    for grade_id, source in locked_sources.items():
        if grade_id not in present:
            found.append(("deleted-cell", grade_id))
        elif present[grade_id].strip() != (source or "").strip():
            found.append(("edited-locked-cell", grade_id))
    return found


def _locked_sources(course, assignment, notebook):
    """``{grade_id: source}`` of the locked cells as students received them (the release)."""
    path = course.path("release", assignment=assignment) / f"{notebook}.ipynb"
    if not path.is_file():
        return {}
    found = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and meta.get("grade_id"):
            found[meta["grade_id"]] = cell.source
    return found


def _release_sources(course, assignment, notebook):
    path = course.path("release", assignment=assignment) / f"{notebook}.ipynb"
    if not path.is_file():
        return []
    return [cell.source for cell in nbformat.read(path, as_version=4).cells]


class _Sanitize(Autograde):
    """nbgrader's Autograde, stopped after its sanitize step (phase 1)."""

    def convert_single_notebook(self, notebook_filename):
        self._sanitizing = True
        self._init_preprocessors()
        BaseConverter.convert_single_notebook(self, notebook_filename)


def stage_submission(course, assignment, student, staging, record):
    """Copy ``submitted/<student>/<assignment>`` to ``staging`` without the notebooks that cannot be graded."""
    src = course.path("submitted", student, assignment)
    dest = Path(staging) / student / assignment
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for name in course.notebooks(assignment):
        rec = record.notebooks[name]
        path = src / f"{name}.ipynb"
        if not path.is_file():
            rec.status, rec.reason = "missing", f"{name}.ipynb was not submitted"
            continue
        try:
            nb = read_submitted_notebook(path)
        except ValueError as error:
            rec.status, rec.reason = "corrupt", f"{name}.ipynb is {error}; it scores 0"
            continue
        rec.tampered = [list(t) for t in find_tampering(nb, _locked_sources(course, assignment, name))]
        rec.suspicious = scan_notebook(nb, _release_sources(course, assignment, name))
        shutil.copy(path, dest / path.name)


def record_all_zero(course, assignment, student):
    """A submission with no gradable notebook: every grade 0 (nbgrader skips a folder with no notebook)."""
    with course.gradebook() as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()
    folder = course.path("autograded", student, assignment)
    if folder.exists():
        shutil.rmtree(folder)


def sanitize(course, assignment, student, staging, notebook="*"):
    """Run nbgrader's sanitize step for one staged submission (or one of its notebooks); return what went
    wrong, in a line, on failure, else None."""
    config = course.config.copy()
    # nbgrader builds regular expressions from its folder names: keep the staging folder inside the course
    relative = os.path.relpath(staging, course.root)
    with temp_attrs(course.coursedir, assignment_id=assignment, student_id=student,
                    submitted_directory=relative, notebook_id=notebook):
        app = _Sanitize(coursedir=course.coursedir, config=config)
        app.force = True
        result = capture_log(app)
    if result["success"]:
        return None
    lines = [line.strip() for line in (result.get("log") or "").splitlines() + (result.get("error") or "").splitlines()]
    useful = [line for line in lines if line and "Traceback" not in line and "see the the above traceback" not in line
              and not line.startswith(("File ", "^", "~"))]
    exceptions = [re.sub(r"^[\w.]*?(\w+(?:Error|Exception|Entry)): ", r"\1: ", line) for line in useful
                  if re.match(r"^[\w.]+(Error|Exception|Entry)\b: ", line) and "NbGraderException" not in line]
    errors = [line for line in useful if "Error" in line or "error" in line]
    return (exceptions or errors or useful or ["nbgrader failed"])[-1][:300]


def sanitize_submission(course, assignment, student, staging, record):
    """Sanitize a staged submission; a notebook nbgrader cannot process is left out (status ``failed``,
    scored 0 as missing) without costing the student's other notebooks."""
    failure = sanitize(course, assignment, student, staging)
    if not failure:
        return
    for name, rec in record.notebooks.items():
        if rec.status == "graded":
            problem = sanitize(course, assignment, student, staging, notebook=name)
            if problem:
                rec.status, rec.reason = "failed", f"nbgrader could not process {name}.ipynb ({problem}); it scores 0"
                (Path(staging) / student / assignment / f"{name}.ipynb").unlink()
    if not any(rec.status == "graded" for rec in record.notebooks.values()):
        record_all_zero(course, assignment, student)
        return
    failure = sanitize(course, assignment, student, staging)
    if failure:
        for rec in record.notebooks.values():
            if rec.status == "graded":
                rec.status, rec.reason = "failed", f"nbgrader could not process this submission ({failure}); it scores 0"
        record_all_zero(course, assignment, student)


# ----------------------------------------------------------------------------------------------------------------
# Phase 2: execute


def sandbox_readonly_paths():
    """What a kernel may read besides Python itself: the course package, the data and the data cache."""
    from eep590_utils import data

    paths = [os.path.dirname(os.path.abspath(eep590_utils.__file__)), str(data._cache_dir()),
             str(data._REPO_SHARED_DATA)]
    if os.environ.get("EEP590_DATA"):
        paths.append(os.environ["EEP590_DATA"])
    # both the path as given (a symlink, say ../shared) and where it really is
    found = {os.path.abspath(p) for p in paths if os.path.exists(p)} | {os.path.realpath(p) for p in paths if os.path.exists(p)}
    return sorted(found)


def kernel_data_env():
    """Environment the kernel needs to find the data the grader can see."""
    from eep590_utils import data

    env = {"EEP590_CACHE": str(data._cache_dir())}
    if os.environ.get("EEP590_DATA"):
        env["EEP590_DATA"] = os.path.abspath(os.environ["EEP590_DATA"])
    return env


def warm_data_cache(course, assignment):
    """Decode the datasets an assignment uses once, in the grader, so that no kernel decodes them
    (kernels see the cache read-only)."""
    from eep590_utils import data

    text = " ".join(p.read_text(errors="replace").lower()
                    for p in course.path("source", assignment=assignment).glob("*.ipynb"))
    for name, loader in (("cifar10", data.load_cifar10), ("mnist", data.load_mnist)):
        if name in text:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    loader()
            except Exception as error:  # the notebooks will say so where they need the data
                log.warning("could not pre-load %s for grading: %s", name, error)


def execute_notebook(path, limits, sandboxed, threads):
    """Run the sanitized notebook at ``path`` in a private copy of its folder; return the ExecutionResult."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="eep590-work-") as tmp:
        workdir = Path(tmp) / "submission"
        shutil.copytree(path.parent, workdir, ignore=shutil.ignore_patterns("*.ipynb"))
        runner = NotebookRunner(nb, workdir, limits=limits, sandbox_readonly=sandbox_readonly_paths(),
                                use_sandbox=sandboxed, env=kernel_data_env(), threads=threads)
        return runner.run()


# ----------------------------------------------------------------------------------------------------------------
# Phase 3: score


def score_notebook(course, assignment, student, notebook, nb):
    """nbgrader's scoring preprocessors on an executed notebook; writes the grades and the notebook."""
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                              "db_url": course.db_url}}
    for preprocessor in SCORE_PREPROCESSORS:
        nb, resources = preprocessor(config=course.config)(nb, resources)  # __call__ honours `enabled`
    nbformat.write(nb, course.path("autograded", student, assignment) / f"{notebook}.ipynb")


def _not_run_copy(nb, reason):
    """``nb`` with an error in every code cell: its tests score 0 (nbgrader gives full marks to no output)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("error", ename="NotRun", evalue=reason,
                                                   traceback=[f"NotRun: {reason}"])]
    return nb


# ----------------------------------------------------------------------------------------------------------------


def default_workers():
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def autograde(course, assignment, students=None, workers=None, limits=None, sandbox=True, echo=print):
    """Grade ``students`` (default: every submission of ``assignment``); return ``{student: StudentRecord}``."""
    if assignment not in course.assignments():
        raise CourseError(f"no assignment {assignment!r} in source/")
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except Exception:
            raise CourseError(f"{assignment} is not in the gradebook yet: run `eep590 release {assignment}` first") from None
    students = sorted(students or course.submitted_students(assignment))
    if not students:
        raise CourseError(f"no submissions in {course.path('submitted')}/<student>/{assignment}/")
    missing = [s for s in students if not course.path("submitted", s, assignment).is_dir()]
    if missing:
        raise CourseError(f"no submission folder for {', '.join(missing)} in {course.path('submitted')}")
    workers = workers or GradingLimits(config=course.config).workers or default_workers()
    limits = limits or configured_limits(course)
    sandboxed = bool(sandbox and bwrap_path())
    if not sandboxed:
        echo(UNSANDBOXED_WARNING if sandbox else "WARNING: sandbox disabled (--no-sandbox): student code runs UNSANDBOXED.")
    notebooks = course.notebooks(assignment)
    records = {s: StudentRecord(s, assignment, sandboxed, {n: NotebookRecord(n) for n in notebooks}) for s in students}

    # Phase 1
    with tempfile.TemporaryDirectory(prefix=".eep590-staging-", dir=course.root) as staging:
        for student in students:
            stage_submission(course, assignment, student, staging, records[student])
            if not any(rec.status == "graded" for rec in records[student].notebooks.values()):
                record_all_zero(course, assignment, student)
                continue
            sanitize_submission(course, assignment, student, staging, records[student])

    # Phase 2
    warm_data_cache(course, assignment)
    jobs = [(s, n) for s in students for n in notebooks if records[s].notebooks[n].status == "graded"]
    threads = max(1, default_workers() // workers)

    def run(job):
        student, notebook = job
        path = course.path("autograded", student, assignment) / f"{notebook}.ipynb"
        try:
            return job, execute_notebook(path, limits, sandboxed, threads), None
        except Exception as error:  # the kernel never started, the folder vanished, ...
            return job, None, f"{type(error).__name__}: {error}"

    started = time.monotonic()
    results = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (job, result, error) in enumerate(pool.map(run, jobs), 1):
            results[job] = (result, error)
            echo(f"  [{done}/{len(jobs)}] {job[0]}/{job[1]}" + (f": {error}" if error else ""))

    # Phase 3
    for (student, notebook), (result, error) in sorted(results.items()):
        rec = records[student].notebooks[notebook]
        path = course.path("autograded", student, assignment) / f"{notebook}.ipynb"
        if result is None:
            rec.status, rec.reason = "failed", f"the notebook could not be run: {error}"
            score_notebook(course, assignment, student, notebook, _not_run_copy(nbformat.read(path, as_version=4), rec.reason))
            continue
        rec.problems = [list(p) for p in result.problems]
        rec.kernel_start_s = round(result.kernel_start_s, 3)
        rec.restarts = result.restarts
        for _, role, seconds in result.cell_seconds:
            rec.seconds[role] = round(rec.seconds.get(role, 0.0) + seconds, 3)
        score_notebook(course, assignment, student, notebook, result.notebook)

    out = records_dir(course, assignment)
    out.mkdir(parents=True, exist_ok=True)
    for student, record in records.items():
        (out / f"{student}.json").write_text(json.dumps(record.to_json(), indent=1))
    echo(f"autograded {len(students)} submission(s) of {assignment}, {len(jobs)} notebook(s) in "
         f"{time.monotonic() - started:.1f} s with {workers} worker(s)" + ("" if sandboxed else " (UNSANDBOXED)"))
    return records
