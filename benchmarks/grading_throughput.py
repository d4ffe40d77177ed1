"""Benchmark: autograde throughput of the sample class copied to many students.

Rows, all measured in the same run on copies of the same class:

- plain ``nbgrader autograde hw1`` (one process, notebooks one after another, no sandbox);
- ``eep590 autograde hw1 --workers 1`` and ``--workers 2`` with cold kernels (each kernel a new sandboxed
  Python that imports numpy, torch, matplotlib and the kit itself: ``EEP590_WARM_KERNELS=0``);
- the same with warm kernels (the default: forked by a sandboxed zygote that imported them once,
  ``grading/zygote.py``), the zygote's own start included.

Then where the time goes per notebook in the eep590 runs: kernel start, given cells (imports and
set-up), student code, tests; and how long commands take to start (``eep590 --help``, and importing
what ``nbgrader_config.py`` imports). The well-behaved samples are used (perfect, partial, blank,
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


def time_command(argv, repeats=3):
    """Median wall and CPU seconds of a command (a fresh process each time)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
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
    args = parser.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    notebooks = args.students * 3
    with tempfile.TemporaryDirectory(prefix="eep590-bench-") as tmp:
        rows, details = [], {}
        plain = time_plain_nbgrader(make_course(Path(tmp) / "plain", args.students), args.cell_timeout)
        rows.append(("nbgrader autograde (plain)", plain))
        for warm in (False, True):
            for workers in (1, 2):
                name = f"eep590 --workers {workers}, {'warm' if warm else 'cold'} kernels"
                course = make_course(Path(tmp) / f"w{workers}-{warm}", args.students)
                seconds, records = time_eep590(course, workers, args.cell_timeout, warm)
                rows.append((name, seconds))
                details[name] = breakdown(records)
    print(f"\n{args.students} students x 3 notebooks = {notebooks} notebooks of hw1, {os.cpu_count()} cores\n")
    print(f"{'method':<40} {'seconds':>8} {'notebooks/min':>14} {'vs plain':>9}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds:8.1f} {notebooks / seconds * 60:14.1f} {plain / seconds:8.2f}x")
    for name, parts in details.items():
        print(f"\nwhere the time goes per graded notebook, {name} (mean seconds)")
        for part, seconds in parts.items():
            print(f"  {part:<32} {seconds:6.2f}")
        overhead = parts.get("kernel start", 0) + parts.get("given cells (imports, set-up)", 0)
        print(f"  {'overhead (start + given cells)':<32} {overhead:6.2f}")
    eep590 = str(Path(sys.executable).parent / "eep590")
    path = str(REPO / "nbgrader_config.py")
    config = (f"from traitlets.config import Config; exec(compile(open({path!r}).read(), {path!r}, 'exec'), "
              f"{{'get_config': Config, '__file__': {path!r}}})")
    print(f"\n{'command start-up (median of 3 fresh processes)':<48} {'wall s':>7} {'CPU s':>7}")
    for label, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                        ("eep590 --help", [eep590, "--help"]),
                        ("nbgrader_config.py (what nbgrader loads)", [sys.executable, "-c", config])):
        wall, cpu = time_command(argv)
        print(f"{label:<48} {wall:7.2f} {cpu:7.2f}")

if __name__ == "__main__":
    main()
