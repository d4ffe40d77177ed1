"""Benchmark: autograde's execute phase on this machine's threads vs a 1-node and a 2-node Ray cluster.

All on one machine (``ray.cluster_utils.Cluster``), on the same copy of the sample class (hw1), with the
same seed, so the grades must be identical (after one warm-up run, not counted); with the same cores in all three,
expect no speed-up: what is
measured is correctness and Ray's cost.

- *start*: seconds to start the cluster and connect (once per grading run on a real cluster: ``ray start``
  is done beforehand, so this is not paid per run there);
- *grade*: ``autograde`` wall time (staging, execute, scoring) and notebooks per minute;
- *per-task overhead*: an empty task's round trip (submit, schedule, run, result), one at a time, and the
  cost per task when 200 empty tasks are in flight; plus the job's size (the notebook and files shipped).

    python benchmarks/cluster_overhead.py --students 3
"""
import argparse
import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes and driver on 127.0.0.1 (see test_cluster.py)
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from grading_throughput import make_course  # noqa: E402

from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.cluster import RayCluster  # noqa: E402
from eep590_utils.grading.jobs import make_job  # noqa: E402
from eep590_utils.grading.sandbox import bwrap_path  # noqa: E402
from eep590_utils.grading.settings import configured_limits  # noqa: E402

SEED = 590


def grades(course):
    with course.gradebook() as gb:
        return sorted((g.student.id, g.notebook.name, g.name, g.score) for s in gb.assignment_submissions("hw1")
                      for nb in s.notebooks for g in nb.grades)


def task_overhead(n_serial=30, n_parallel=200):
    """(ms per empty task one at a time, ms per empty task with many in flight)."""
    import ray

    remote = ray.remote(num_cpus=1)(lambda x: x)
    ray.get(remote.remote(0))  # a worker started
    times = []
    for i in range(n_serial):
        start = time.perf_counter()
        ray.get(remote.remote(i))
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    ray.get([remote.remote(i) for i in range(n_parallel)])
    return statistics.median(times) * 1000, (time.perf_counter() - start) / n_parallel * 1000


def grade(course, workers, cell_timeout, cluster=None):
    start = time.monotonic()
    records = autograde(course, "hw1", workers=workers, limits=configured_limits(course, cell_timeout=cell_timeout),
                        sandbox=bwrap_path() is not None, seed=SEED, echo=lambda *_: None, cluster=cluster)
    statuses = {s: {n: r.status for n, r in rec.notebooks.items()} for s, rec in records.items()}
    return time.monotonic() - start, statuses


def on_ray(course, nodes, cpus, cell_timeout):
    import ray
    from ray.cluster_utils import Cluster

    start = time.monotonic()
    args = {"num_cpus": cpus // nodes, "object_store_memory": 200 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**args)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    started = time.monotonic() - start
    try:
        serial_ms, parallel_ms = task_overhead()
        seconds, statuses = grade(course, cpus, cell_timeout, RayCluster(max_tries=3))
        return started, seconds, statuses, serial_ms, parallel_ms
    finally:
        ray.shutdown()
        cluster.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs in all, split between the nodes")
    parser.add_argument("--cell-timeout", type=float, default=60)
    args = parser.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    with tempfile.TemporaryDirectory(prefix="eep590-bench-") as tmp:
        course = make_course(Path(tmp) / "course", args.students)
        grade(course, args.cpus, args.cell_timeout)  # warm-up (data cache, imports, page cache): not counted
        local_s, local_statuses = grade(course, args.cpus, args.cell_timeout)
        local_grades = grades(course)
        notebooks = sum(len(n) for n in local_statuses.values())
        job_bytes = [len(pickle.dumps(make_job(course, "hw1", s, n, configured_limits(course), True, SEED)))
                     for s in local_statuses for n in local_statuses[s]]
        rows = [(f"local, {args.cpus} threads", None, local_s, True, None, None)]
        for nodes in (1, 2):
            started, seconds, statuses, serial_ms, parallel_ms = on_ray(course, nodes, args.cpus, args.cell_timeout)
            same = statuses == local_statuses and grades(course) == local_grades
            rows.append((f"Ray, {nodes} node(s) x {args.cpus // nodes} CPU", started, seconds, same, serial_ms, parallel_ms))
    print(f"\n{args.students} students, {notebooks} notebooks of hw1, {args.cpus} CPUs in all, "
          f"{os.cpu_count()} cores on the machine; job size median {statistics.median(job_bytes) / 1024:.0f} KiB\n")
    print(f"| {'setup':<26} | start s | grade s | notebooks/min | same grades | empty task ms (serial) | per task ms (200 in flight) |")
    print("|" + "|".join("-" * w for w in (28, 9, 9, 15, 13, 24, 29)) + "|")
    for name, started, seconds, same, serial_ms, parallel_ms in rows:
        print(f"| {name:<26} | {'-' if started is None else f'{started:.1f}':>7} | {seconds:7.1f} | "
              f"{notebooks / seconds * 60:13.1f} | {'yes' if same else 'NO':>11} | "
              f"{'-' if serial_ms is None else f'{serial_ms:.1f}':>22} | {'-' if parallel_ms is None else f'{parallel_ms:.1f}':>27} |")
    print("\nRay's cost per notebook: (grade s on Ray - grade s local) / notebooks = "
          + ", ".join(f"{(r[2] - local_s) / notebooks:+.2f} s ({r[0]})" for r in rows[1:]))


if __name__ == "__main__":
    main()
