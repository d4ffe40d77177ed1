"""A class graded in one run under load and under kills (issue 10): 60 students with 2 workers, on SQLite
and PostgreSQL, a run stopped with SIGTERM and one killed with SIGKILL mid-run, each then re-run: every
grade equals a clean run's, none lost or duplicated, at most ``workers`` kernels alive at any time, no
stray process or temporary folder left. Prints the figures (wall time, peak kernels, peak memory)."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from eep590_utils.grading.course import Course
from eep590_utils.grading.records import load_records
from eep590_utils.grading.release import release
from eep590_utils.grading.sandbox import bwrap_path
from eep590_utils.grading.zygote import KERNEL_NAME

sys.path.insert(0, str(Path(__file__).parent))

# SQLite is stopped with SIGTERM (kernels killed, folders removed by the run itself), PostgreSQL is killed
# with SIGKILL (nothing runs in the driver: bubblewrap's --die-with-parent ends the kernels, the next run
# removes the folders); together they cover both databases and both signals in four runs of the class.
from toy_course import make_toy_course, solved, submit  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")]
STUDENTS = 60
WORKERS = 2
EEP590 = [sys.executable, "-m", "eep590_utils.grading.cli"]


def _light_course(root, db_url=None):
    """The toy course with an imports cell that needs only numpy (60 notebooks in well under a minute)."""
    make_toy_course(root)
    path = root / "source" / "toy" / "toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    imports = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "imports")
    imports.source = "import numpy as np\nfrom eep590_utils.checks import check_close"
    nbformat.write(nb, path)
    course = Course(root, db_url=db_url)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    kinds = [solved(release_nb), solved(release_nb, add="return a - b if b < 0 else a + b"), release_nb,
             solved(release_nb, mul="return a + b")]
    for index in range(STUDENTS):
        submit(root, f"s{index:02d}", kinds[index % len(kinds)])
    return course


def _kernels(driver):
    """The kernel processes under the driver (a kernel's own short-lived children, forked with its command
    line, e.g. when it probes the network interfaces at start, are not kernels). A warm kernel, forked by
    the zygote, has the zygote's command line and the name ``eep590-kernel``."""
    try:
        found = [p for p in driver.children(recursive=True) if p.name() == KERNEL_NAME
                 or ("ipykernel_launcher" in " ".join(p.cmdline()) and "bwrap" not in p.name())]
        pids = {p.pid for p in found}
        return [p for p in found if p.ppid() not in pids]
    except psutil.Error:
        return []


def _autograde(root, db_url=None, stop_after=None, how=signal.SIGTERM):
    """Run ``eep590 autograde`` in a process; stop it with ``how`` once ``stop_after`` notebooks are graded.
    Returns (exit code, wall seconds, peak kernels, peak kernel memory in MiB, pid)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if db_url:
        env["EEP590_DB_URL"] = db_url
    cmd = EEP590 + ["--course", str(root), "autograde", "toy", "--workers", str(WORKERS), "--cell-timeout", "20"]
    t0 = time.monotonic()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    driver = psutil.Process(proc.pid)
    peak, peak_mb, sent = 0, 0.0, False
    while proc.poll() is None:
        kernels = _kernels(driver)
        peak = max(peak, len(kernels))
        used = 0
        for k in kernels:
            try:
                used += k.memory_info().rss
            except psutil.Error:
                pass
        peak_mb = max(peak_mb, used / 2**20)
        if stop_after and not sent:
            log.seek(0)
            if log.read().count(b"] s") >= stop_after:
                proc.send_signal(how)
                sent = True
        time.sleep(0.05)
    log.seek(0)
    output = log.read().decode(errors="replace")
    assert sent or not stop_after, output
    return proc.returncode, time.monotonic() - t0, peak, peak_mb, proc.pid, output


def _grades(course):
    with course.gradebook() as gb:
        rows = [(s.student.id, nb.name, g.name, g.score) for s in gb.assignment_submissions("toy")
                for nb in s.notebooks for g in nb.grades]
    return sorted(rows)


def _leftovers(root, pid):
    stray = [p for p in psutil.process_iter(["cmdline"])
             if f"eep590-kernel-{pid}-" in " ".join(p.info["cmdline"] or [])  # a cold kernel
             or f"eep590-pool-{pid}-" in " ".join(p.info["cmdline"] or [])]  # a zygote (and its warm kernels)
    folders = list(Path(root).glob(".eep590-staging-*")) + list(Path(tempfile.gettempdir()).glob(f"eep590-*-{pid}-*"))
    return stray, folders


def _stopped_then_rerun(root, db_url, how, figures, label):
    code, wall, peak, peak_mb, pid, output = _autograde(root, db_url, stop_after=STUDENTS // 3, how=how)
    assert code != 0
    time.sleep(2)  # a killed driver's kernels die with it (bubblewrap --die-with-parent)
    stray, folders = _leftovers(root, pid)
    assert not stray, f"kernels left running after {how.name}"
    if how == signal.SIGTERM:
        assert not folders, f"temporary folders left after SIGTERM: {folders}"
    records = load_records(Course(root, db_url=db_url), "toy")
    assert not all(r.final for r in records.values()), "a stopped run must leave the rest marked ungraded"
    figures.append((label + f" ({how.name} after {STUDENTS // 3})", wall, peak, peak_mb))
    assert peak <= WORKERS
    code, wall, peak, peak_mb, pid2, output = _autograde(root, db_url)
    assert code == 0, output
    assert not any(_leftovers(root, p)[0] or _leftovers(root, p)[1] for p in (pid, pid2))
    figures.append((label + " re-run", wall, peak, peak_mb))
    assert peak <= WORKERS
    assert all(r.final for r in load_records(Course(root, db_url=db_url), "toy").values())


@pytest.fixture(scope="module")
def figures():
    rows = []
    yield rows
    print("\nrun                                   wall s  peak kernels  peak kernel MiB")
    for label, wall, peak, mb in rows:
        print(f"{label:<38}{wall:>6.1f}  {peak:>12}  {mb:>15.0f}")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, figures):
    root = tmp_path_factory.mktemp("load") / "clean"
    course = _light_course(root)
    code, wall, peak, peak_mb, pid, output = _autograde(root)
    assert code == 0, output
    figures.append(("SQLite clean run", wall, peak, peak_mb))
    return course, _grades(course), peak


def test_a_clean_run_grades_everyone_with_at_most_workers_kernels(clean):
    course, grades, peak = clean
    assert len(grades) == len(set((s, n, g) for s, n, g, _ in grades)) == STUDENTS * len({g for _, _, g, _ in grades})
    assert 1 <= peak <= WORKERS
    scores = {s: sum(score for st, _, _, score in grades if st == s) for s in {g[0] for g in grades}}
    assert scores["s00"] == 4 and scores["s01"] == 2 and scores["s02"] == 0 and scores["s03"] == 3


def test_sqlite_run_stopped_with_sigterm_then_rerun_equals_a_clean_run(clean, tmp_path, figures):
    root = tmp_path / "course"
    course = _light_course(root)
    _stopped_then_rerun(root, None, signal.SIGTERM, figures, "SQLite")
    assert _grades(course) == clean[1]


@pytest.mark.postgres
def test_postgresql_run_killed_with_sigkill_then_rerun_equals_a_clean_run(clean, tmp_path, postgres, figures):
    root = tmp_path / "course"
    course = _light_course(root, db_url=postgres)
    _stopped_then_rerun(root, postgres, signal.SIGKILL, figures, "PostgreSQL")
    assert _grades(course) == clean[1]
