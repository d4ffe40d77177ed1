"""Benchmark: autograde throughput of the sample class copied to many students.

Rows, all measured in the same run on copies of the same class:

- plain ``nbgrader autograde hw1`` (one process, notebooks one after another, no sandbox);
- ``eep590 autograde hw1 --workers 1`` and ``--workers 2`` with cold kernels (each kernel a new sandboxed
  Python that imports numpy, torch, matplotlib and the kit itself: ``EEP590_WARM_KERNELS=0``);
- the same with warm kernels (the default: forked by a sandboxed zygote that imported them once,
  ``grading/zygote.py``), the zygote's own start included.

Then where the time goes per notebook in the eep590 runs: kernel start, given cells (imports and
set-up), student code, tests; and how long commands take in fresh processes (``eep590 --help``, reading
``nbgrader_config.py``, ``eep590 report``'s start and whole run, ``eep590 export``) on the class just graded
(``--commands-only``: grade it once, warm, and time the commands only). The well-behaved samples are used (perfect, partial, blank,
broken): the endless one would only measure the timeout. Cold and warm loads of CIFAR-10 are
``benchmarks/data_load.py``.

    python benchmarks/grading_throughput.py --students 21
"""
import argparse
import dataclasses
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course
from eep590_utils.grading.release import release
from eep590_utils.grading.settings import configured_limits

REPO = Path(__file__).resolve().parents[1]
SAMPLES = ("perfect", "partial_conv", "partial_dropout", "blank", "broken")


def make_course(root, students):
    root.mkdir(parents=True)
    shutil.copytree(REPO / "source", root / "source")
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for i in range(students):
        sample = SAMPLES[i % len(SAMPLES)]
        shutil.copytree(REPO / "samples" / "hw1" / sample, root / "submitted" / f"s{i:03d}_{sample}" / "hw1")
    course = Course(root)
    release(course, "hw1")
    return course


def time_plain_nbgrader(course, cell_timeout):
    start = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "hw1", f"--Execute.timeout={int(cell_timeout)}"],
                   cwd=course.root, check=False, capture_output=True,
                   env=dict(os.environ, EEP590_ALLOW_PLAIN_AUTOGRADE="1"))  # the baseline: nbgrader as it ships
    return time.monotonic() - start


def time_eep590(course, workers, cell_timeout, warm):
    limits = dataclasses.replace(configured_limits(course, cell_timeout=cell_timeout), warm_kernels=warm)
    start = time.monotonic()
    records = autograde(course, "hw1", workers=workers, limits=limits, echo=lambda *_: None)
    return time.monotonic() - start, records


def time_command(argv, repeats=3, returncode=0, cwd=None):
    """Median wall and CPU seconds of a command (a fresh process each time)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
        if done.returncode != returncode:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
        walls.append(time.monotonic() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def breakdown(records):
    parts = {"kernel start": [], "given cells (imports, set-up)": [], "student code": [], "tests": []}
    for record in records.values():
        for nb in record.notebooks.values():
            if nb.status != "graded":
                continue
            parts["kernel start"].append(nb.kernel_start_s)
            parts["given cells (imports, set-up)"].append(nb.seconds.get("given", 0.0))
            parts["student code"].append(nb.seconds.get("student", 0.0))
            parts["tests"].append(nb.seconds.get("test", 0.0))
    return {k: statistics.mean(v) for k, v in parts.items() if v}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=21)
    parser.add_argument("--cell-timeout", type=float, default=60)
    parser.add_argument("--commands-only", action="store_true",
                        help="grade the class once (warm kernels, 2 workers) and time the commands only")
    args = parser.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    notebooks = args.students * 3
    with tempfile.TemporaryDirectory(prefix="eep590-bench-") as tmp:
        rows, details = [], {}
        plain = None
        if not args.commands_only:
            plain = time_plain_nbgrader(make_course(Path(tmp) / "plain", args.students), args.cell_timeout)
            rows.append(("nbgrader autograde (plain)", plain))
        for warm in (True,) if args.commands_only else (False, True):
            for workers in (2,) if args.commands_only else (1, 2):
                name = f"eep590 --workers {workers}, {'warm' if warm else 'cold'} kernels"
                course = make_course(Path(tmp) / f"w{workers}-{warm}", args.students)
                seconds, records = time_eep590(course, workers, args.cell_timeout, warm)
                rows.append((name, seconds))
                details[name] = breakdown(records)
        print(f"\n{args.students} students x 3 notebooks = {notebooks} notebooks of hw1, {os.cpu_count()} cores\n")
        print(f"{'method':<40} {'seconds':>8} {'notebooks/min':>14} {'vs plain':>9}")
        for name, seconds in rows:
            ratio = f"{plain / seconds:8.2f}x" if plain else "       -"
            print(f"{name:<40} {seconds:8.1f} {notebooks / seconds * 60:14.1f} {ratio}")
        for name, parts in details.items():
            print(f"\nwhere the time goes per graded notebook, {name} (mean seconds)")
            for part, seconds in parts.items():
                print(f"  {part:<32} {seconds:6.2f}")
            overhead = parts.get("kernel start", 0) + parts.get("given cells (imports, set-up)", 0)
            print(f"  {'overhead (start + given cells)':<32} {overhead:6.2f}")
        time_commands(course, args.students)  # the class graded last (warm kernels, 2 workers)


def time_commands(course, students):
    """How long commands take, each in fresh processes, on the class just graded (``course``)."""
    eep590 = [str(Path(sys.executable).parent / "eep590"), "--course", str(course.root)]
    config = f"from eep590_utils.grading.course import load_config; load_config({str(REPO)!r})"
    csv_path = str(course.root / "grades.csv")
    print(f"\n{'command (median of 3 fresh processes)':<60} {'wall s':>7} {'CPU s':>7}")
    for label, argv, code in (
            ("python -c pass", [sys.executable, "-c", "pass"], 0),
            ("eep590 --help", [*eep590[:1], "--help"], 0),
            ("nbgrader_config.py, read as eep590 reads it (load_config)", [sys.executable, "-c", config], 0),
            ("import nbgrader.api (what report/export imported before)", [sys.executable, "-c", "import nbgrader.api"], 0),
            ("eep590 report: start (unknown hw: imports, config, 1 query)", [*eep590, "report", "nohw"], 1),
            (f"eep590 report hw1: whole ({students} students, 4 figures)", [*eep590, "report", "hw1"], 0),
            ("eep590 export --allow-pending: whole", [*eep590, "export", "--out", csv_path, "--allow-pending"], 0)):
        wall, cpu = time_command(argv, returncode=code)
        print(f"{label:<60} {wall:7.2f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
