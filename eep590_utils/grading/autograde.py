"""``eep590 autograde``: grade a whole class in one run, each notebook in its own sandboxed kernel.

nbgrader's autograde runs one notebook after another in one process, gives a whole student 0 when one
of their notebooks is corrupt, fails the submission on a loop that ignores SIGINT, and lets student
code read the course directory. Here the work is split in three phases around nbgrader's own
preprocessors, and every phase isolates every notebook: whatever one submission holds, prints or does,
it is recorded with its reason and every other notebook is graded exactly as it would be alone.

1. **stage and sanitize** (serial, :mod:`.stage`): each submission is copied, links and special files
   skipped, to a private staging folder; unreadable notebooks are left out with the reason; broken
   nbgrader metadata is repaired and said; nbgrader's sanitize step writes ``autograded/``.
2. **execute** (``workers`` threads): every notebook runs in its own kernel, in a private copy of its
   student's folder, inside bubblewrap (:mod:`.sandbox`), within the per-cell timeout, the per-notebook
   wall time, and the memory, disk and process limits (:mod:`.execute`). At most ``workers`` kernels
   are alive at any time. A kernel that does not start is retried; if it never does, the notebook is
   left *ungraded* (the grader's failure, never the student's 0).
3. **score** (main thread, as each notebook finishes): nbgrader's ``IgnorePattern``, ``LimitOutput``,
   ``SaveAutoGrades`` and ``AssignLatePenalties`` write the grades one notebook at a time, so parallel
   workers can neither lose nor duplicate a grade, with SQLite or PostgreSQL.

A JSON record per student (status, problems, flags, timings) goes to ``reports/<hw>/records/``; every
notebook starts the run as ``ungraded`` and becomes final only when scored, so a run that is killed
(SIGTERM, SIGKILL, a lost machine) never leaves an unfinished grade looking final. SIGTERM and Ctrl-C
kill every kernel and remove every temporary folder; a run after a SIGKILL removes what the killed one
left. Every run regrades from scratch (idempotent).
"""
import json
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades

from . import cells
from .course import CourseError
from .execute import CANCEL, VERDICT, kill_all_kernels
from .flags import flag_in_gradebook
from .jobs import close_zygotes, make_job, run_with_retries
from .judge import judges_path, load_judges_source
from .records import FAILED, GRADED, UNGRADED, NotebookRecord, StudentRecord, write_record
from .sandbox import bwrap_path
from .settings import GradingLimits, configured_limits
from .stage import record_all_zero, sanitize_submission, stage_submission

log = logging.getLogger("eep590.autograde")

UNSANDBOXED_REFUSAL = (
    "bubblewrap (bwrap) is not installed, so student code would run UNSANDBOXED: it could read the course "
    "directory (source/, the gradebook, other submissions) and reach the network. Install it (Debian/Ubuntu: "
    "apt-get install bubblewrap), or pass --no-sandbox for notebooks you trust (never for real submissions)."
)
NO_SANDBOX_WARNING = "WARNING: sandbox disabled (--no-sandbox): student code runs UNSANDBOXED."
SCORE_PREPROCESSORS = (IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties,
                       CheckCellMetadata)
MAX_CELL_SOURCE = 200_000  # characters of a cell kept in the autograded copy (and so in feedback)
MAX_OUTPUT_CHARS = 200_000  # characters of one text output kept
MAX_OUTPUT_DATA = 2_000_000  # characters of one image or other rich output kept


# ----------------------------------------------------------------------------------------------------------------
# Phase 2: execute


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


# ----------------------------------------------------------------------------------------------------------------
# Phase 3: score


def prepare_for_scoring(nb):
    """Bound what the executed notebook can carry into scoring and feedback, in place.

    A test cell scores from its outputs: an ``execute_result`` would be read as partial credit (a value
    nbgrader cannot parse or one past the cell's points stops nbgrader), so test cells keep none but a
    judge's partial-credit verdict; every
    cell's source and outputs are capped so a 200 MB cell cannot become a 200 MB feedback page.
    """
    for cell in nb.cells:
        if len(cell.get("source", "")) > MAX_CELL_SOURCE:
            cell.source = cell.source[:MAX_CELL_SOURCE] + f"\n\n[... cut: this cell held {len(cell.source):,} characters]"
        if cell.cell_type != "code":
            continue
        is_test = cells.is_test(cell)
        kept = []
        for output in cell.get("outputs", []):
            if is_test and output.get("output_type") == "execute_result" and not output.get("metadata", {}).get(VERDICT):
                continue  # partial credit comes from a judge's verdict only
            _cap_output(output)
            kept.append(output)
        cell.outputs = kept
    return nb


def _cap_output(output):
    if isinstance(output.get("text"), str) and len(output["text"]) > MAX_OUTPUT_CHARS:
        output["text"] = output["text"][:MAX_OUTPUT_CHARS] + "\n[... output cut]\n"
    data = output.get("data")
    if isinstance(data, dict):
        for mime, value in list(data.items()):
            size = len(value) if isinstance(value, str) else len(json.dumps(value))
            if mime.startswith("text/") and isinstance(value, str) and size > MAX_OUTPUT_CHARS:
                data[mime] = value[:MAX_OUTPUT_CHARS] + "\n[... output cut]\n"
            elif size > MAX_OUTPUT_DATA:
                del data[mime]
        if not data:
            data["text/plain"] = "[output too large: left out]"
    if output.get("output_type") == "error":
        output["evalue"] = str(output.get("evalue", ""))[:MAX_OUTPUT_CHARS]
        output["traceback"] = [str(line)[:MAX_OUTPUT_CHARS] for line in output.get("traceback", [])][:200]


def score_notebook(course, assignment, student, notebook, nb):
    """nbgrader's scoring preprocessors on an executed notebook; writes the grades and the notebook."""
    nb = prepare_for_scoring(nb)
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


def score_zero(course, assignment, student, notebook, reason):
    """Score every autograded cell of a staged notebook 0 (it could not be run or scored), with the reason."""
    path = course.path("autograded", student, assignment) / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                              "db_url": course.db_url}}
    nb, resources = SaveAutoGrades(config=course.config)(_not_run_copy(nb, reason), resources)
    nbformat.write(nb, path)


# ----------------------------------------------------------------------------------------------------------------
# The run


def default_workers():
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


TEMP_PREFIXES = ("eep590-work-", "eep590-kernel-", "eep590-pool-")


def remove_stale_folders(course):
    """Remove the temporary folders of runs whose process is gone (a run killed with SIGKILL)."""
    places = [(course.root, ".eep590-staging-"), *((Path(tempfile.gettempdir()), p) for p in TEMP_PREFIXES)]
    removed = 0
    for folder, prefix in places:
        for path in folder.glob(prefix + "*"):
            pid = path.name[len(prefix):].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


class GradingStopped(KeyboardInterrupt):
    """The run was told to stop (SIGTERM): kernels killed, temporary folders removed, grades kept."""


@contextmanager
def _stop_on_sigterm():
    """SIGTERM stops the run as Ctrl-C does (in the main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        kill_all_kernels()
        raise GradingStopped(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_can_grade(course, assignment, students):
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
    return students


def autograde(course, assignment, students=None, workers=None, limits=None, sandbox=True, echo=print, seed=None,
              cluster=None):
    """Grade ``students`` (default: every submission of ``assignment``); return ``{student: StudentRecord}``.

    ``sandbox=True`` refuses to run without bubblewrap (:data:`UNSANDBOXED_REFUSAL`); ``sandbox=False``
    runs student code unsandboxed, for trusted notebooks only, and says so. ``seed`` fixes the judges'
    inputs (default: fresh for every run, recorded in each student's record). ``cluster`` (a
    :class:`.cluster.RayCluster`) runs phase 2 on a Ray cluster instead of this machine's threads.
    """
    students = _check_can_grade(course, assignment, students)
    sandboxed = bool(sandbox and bwrap_path())
    if sandbox and not sandboxed:
        raise CourseError(UNSANDBOXED_REFUSAL)
    if not sandboxed:
        echo(NO_SANDBOX_WARNING)
    workers = workers or GradingLimits(config=course.config).workers or default_workers()
    limits = limits or configured_limits(course)
    if cluster is None and GradingLimits(config=course.config).ray_address:  # see docs/cluster.md
        from .cluster import make_cluster
        cluster = make_cluster(GradingLimits(config=course.config).ray_address)
    CANCEL.clear()
    remove_stale_folders(course)
    notebooks = course.notebooks(assignment)
    seed = secrets.randbits(32) if seed is None else int(seed)
    judges = {}  # notebook -> the judges file's text, read once; one that does not load stops the run here
    for notebook in notebooks:
        path = judges_path(course, assignment, notebook)
        judges[notebook] = path.read_text() if path.is_file() else ""
        try:
            load_judges_source(judges[notebook], str(path))
        except Exception as error:
            raise CourseError(f"{path} does not load: {type(error).__name__}: {error}") from None
    records = {s: StudentRecord(s, assignment, sandboxed, {n: NotebookRecord(n) for n in notebooks}, seed=seed)
               for s in students}
    for record in records.values():  # until scored, every notebook is ungraded (a killed run says so)
        for rec in record.notebooks.values():
            rec.reason = "not graded yet: the last autograde run stopped before this notebook was scored"
        write_record(course, record)
    started = time.monotonic()
    with _stop_on_sigterm():
        with tempfile.TemporaryDirectory(prefix=f".eep590-staging-{os.getpid()}-", dir=course.root) as staging:
            for student in students:
                _stage_one(course, assignment, student, staging, records[student])
        jobs = [(s, n) for s in students for n in notebooks if records[s].notebooks[n].status == GRADED]
        for student in students:
            if not any(j[0] == student for j in jobs):
                write_record(course, records[student])
        warm_data_cache(course, assignment)
        try:
            _execute_and_score(course, assignment, jobs, records, workers, limits, sandboxed, echo, seed, cluster,
                               judges)
        finally:
            close_zygotes()  # the warm kernels' zygotes of this run (their pools removed)
    flag_in_gradebook(course, assignment, records)  # formgrader's "Flagged?" column shows the kit's flags
    echo(f"autograded {len(students)} submission(s) of {assignment}, {len(jobs)} notebook(s) in "
         f"{time.monotonic() - started:.1f} s with {workers} worker(s)" + ("" if sandboxed else " (UNSANDBOXED)"))
    return records


def _stage_one(course, assignment, student, staging, record):
    """Phase 1 for one student; nothing in the submission can stop the run."""
    try:
        stage_submission(course, assignment, student, staging, record)
        if any(rec.status == GRADED for rec in record.notebooks.values()):
            sanitize_submission(course, assignment, student, staging, record)
        else:
            record_all_zero(course, assignment, student)
    except Exception as error:  # something in this submission that staging did not foresee
        log.exception("staging %s failed", student)
        for rec in record.notebooks.values():
            if rec.status == GRADED or rec.status == UNGRADED:
                why = f"{type(error).__name__}: {str(error)[:200]}"
                rec.status, rec.reason = FAILED, f"the submission could not be staged ({why}); it scores 0"
        try:
            record_all_zero(course, assignment, student)
        except Exception:
            log.exception("could not record zeros for %s", student)


def _execute_and_score(course, assignment, jobs, records, workers, limits, sandboxed, echo, seed, cluster=None,
                       judges=None):
    """Phase 2 on ``workers`` threads here (or on a Ray cluster, ``cluster``), phase 3 in this thread as
    each notebook finishes."""
    threads = max(1, default_workers() // workers)
    pending = {student: sum(1 for j in jobs if j[0] == student) for student in records}

    def job_of(key):
        return make_job(course, assignment, key[0], key[1], limits, sandboxed, seed, threads,
                        judges_source=(judges or {}).get(key[1]))

    done_count = 0
    runs = cluster.run(jobs, job_of) if cluster is not None else _run_here(jobs, job_of, workers)
    for key, result, fault in runs:
        done_count += 1
        _score_one(course, assignment, key, records, result, fault)
        echo(f"  [{done_count}/{len(jobs)}] {key[0]}/{key[1]}" + (f": {fault}" if fault else ""))
        pending[key[0]] -= 1
        if pending[key[0]] == 0:
            write_record(course, records[key[0]])


def _run_here(keys, job_of, workers):
    """Yield ``(key, result, fault)`` as the notebooks finish on ``workers`` threads of this machine."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(lambda k: run_with_retries(job_of(k)), key): key for key in keys}
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                result, fault = future.result()
                yield futures[future], result, fault
    except BaseException:
        kill_all_kernels()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _score_one(course, assignment, job, records, result, fault):
    """Phase 3 for one notebook; a notebook whose outputs nbgrader cannot score costs only itself."""
    student, notebook = job
    rec = records[student].notebooks[notebook]
    if result is None:
        rec.status = UNGRADED
        rec.reason = (f"the grader could not run this notebook ({fault}); this is not the student's fault and "
                      "it will be graded on the next autograde run")
        return
    rec.problems = [list(p) for p in result.problems]
    rec.kernel_start_s = round(result.kernel_start_s, 3)
    rec.restarts = result.restarts
    for _, role, seconds in result.cell_seconds:
        rec.seconds[role] = round(rec.seconds.get(role, 0.0) + seconds, 3)
    try:
        score_notebook(course, assignment, student, notebook, result.notebook)
        rec.status = GRADED
        rec.reason = ""
    except Exception as error:
        log.exception("scoring %s/%s failed", student, notebook)
        reason = f"its outputs could not be scored ({type(error).__name__}: {str(error)[:200]}); it scores 0"
        try:
            score_zero(course, assignment, student, notebook, reason)
            rec.status, rec.reason = FAILED, reason
        except Exception as again:
            rec.status = UNGRADED
            rec.reason = f"the grader could not record this notebook's scores ({type(again).__name__}: {str(again)[:200]})"
