"""Benchmark: autograde throughput of the sample class copied to many students.

Rows, all measured in the same run on copies of the same class:

- plain ``nbgrader autograde hw1`` (one process, notebooks one after another, no sandbox);
- ``eep590 autograde hw1 --workers 1`` and ``--workers 2`` (sandboxed kernels, private working copies).

Then where the time goes per notebook in the eep590 runs: kernel start, given cells (imports and
set-up), student code, tests. The well-behaved samples are used (perfect, partial, blank, broken):
the endless one would only measure the timeout.

    python benchmarks/grading_throughput.py --students 21
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eep590_utils.grading.autograde import autograde, configured_limits
from eep590_utils.grading.course import Course
from eep590_utils.grading.release import release

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


def time_eep590(course, workers, cell_timeout):
    start = time.monotonic()
    records = autograde(course, "hw1", workers=workers, limits=configured_limits(course, cell_timeout=cell_timeout),
                        echo=lambda *_: None)
    return time.monotonic() - start, records


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
        for workers in (1, 2):
            seconds, records = time_eep590(make_course(Path(tmp) / f"w{workers}", args.students), workers, args.cell_timeout)
            rows.append((f"eep590 autograde --workers {workers}", seconds))
            details[workers] = breakdown(records)
    print(f"\n{args.students} students x 3 notebooks = {notebooks} notebooks of hw1, {os.cpu_count()} cores\n")
    print(f"{'method':<32} {'seconds':>8} {'notebooks/min':>14} {'vs plain':>9}")
    for name, seconds in rows:
        print(f"{name:<32} {seconds:8.1f} {notebooks / seconds * 60:14.1f} {plain / seconds:8.2f}x")
    for workers, parts in details.items():
        print(f"\nwhere the time goes per graded notebook, --workers {workers} (mean seconds)")
        for name, seconds in parts.items():
            print(f"  {name:<32} {seconds:6.2f}")


if __name__ == "__main__":
    main()
