"""Autograde on a real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``).

The toy class graded through Ray gets exactly the grades of local grading; a node killed while it runs
a notebook loses no grade; a notebook that keeps killing its worker is stopped after N tries and
recorded ungraded with the reason; GPU notebooks ask Ray for a GPU and, on a cluster without one, are
said to need one at once instead of waiting forever; stopping the driver kills the tasks still running.
"""
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from traitlets.config import Config

# every node and the driver on the loopback address (ray otherwise advertises the machine's own address);
# tests/conftest.py sets it too, before anything imports ray
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from eep590_utils.grading.autograde import autograde  # noqa: E402
from eep590_utils.grading.cli import build_parser  # noqa: E402
from eep590_utils.grading.cluster import RayCluster, grade_on_worker, make_cluster  # noqa: E402
from eep590_utils.grading.course import Course  # noqa: E402
from eep590_utils.grading.jobs import NotebookJob  # noqa: E402
from eep590_utils.grading.records import GRADED, UNGRADED  # noqa: E402
from eep590_utils.grading.release import release  # noqa: E402
from eep590_utils.grading.sandbox import bwrap_path  # noqa: E402
from eep590_utils.grading.settings import Limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import make_toy_course, solved, submit  # noqa: E402

pytestmark = pytest.mark.slow
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # nbgrader runs alembic
LIMITS = Limits(cell_timeout=30, notebook_timeout=240, memory_bytes=2**30)
SANDBOX = bwrap_path() is not None
SEED = 590
# Both nodes on this machine, on 127.0.0.1: ray 2.60 rewrites 127.0.0.1 in a bootstrap address to the machine's
# own address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (set above, before ray is imported) keeps it on loopback.
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 100 * 2**20}


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node, one CPU each, both on this machine; this process is the driver."""
    for attempt in range(3):  # ray waits a fixed 30 s for a raylet to register: too little on a loaded 2-core CI box
        c = Cluster(shutdown_at_exit=True)
        try:
            c.add_node(**NODE_ARGS, include_dashboard=False)  # the first node added is the head
            worker = c.add_node(**NODE_ARGS)
            break
        except Exception:
            c.shutdown()
            if attempt == 2:
                raise
    ray.init(address=c.address, log_to_driver=False)
    c.wait_for_nodes()
    c.worker = worker
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = make_toy_course(tmp_path_factory.mktemp("toy") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "alice", solved(release_nb))
    submit(root, "bob", solved(release_nb, add="return a - b if b < 0 else a + b"))
    submit(root, "carol", release_nb)
    submit(root, "dave", nbformat.writes(solved(release_nb))[:200])  # corrupt: never reaches a worker
    return course


def _grades(course):
    with course.gradebook() as gb:
        return sorted((g.student.id, g.notebook.name, g.name, g.score) for s in gb.assignment_submissions("toy")
                      for nb in s.notebooks for g in nb.grades)


def _statuses(records):
    return {s: {n: r.status for n, r in rec.notebooks.items()} for s, rec in records.items()}


def _grade(course, cluster=None, students=None):
    return autograde(course, "toy", students=students, workers=2, limits=LIMITS, sandbox=SANDBOX, seed=SEED,
                     echo=lambda *_: None, cluster=cluster)


@pytest.fixture(scope="module")
def local_grades(course):
    records = _grade(course)
    return _grades(course), _statuses(records)


def _job(student, needs_gpu=False):
    return NotebookJob(student=student, notebook="toy", notebook_json="{}", needs_gpu=needs_gpu)


def test_the_ray_option():
    assert build_parser().parse_args(["autograde", "hw1", "--ray", "auto"]).ray == "auto"
    assert build_parser().parse_args(["autograde", "hw1"]).ray is None
    assert make_cluster("") is None and make_cluster("local").address == "local"


def test_gpu_notebooks_ask_for_a_gpu_and_are_refused_at_once_where_there_is_none(cluster):
    ran = RayCluster(runner=lambda job: (None, f"ran {job.student}"), max_tries=4)
    keys = [("cpu", "toy"), ("gpu", "toy")]
    started = time.monotonic()
    out = {key: fault for key, _, fault in ran.run(keys, lambda key: _job(key[0], needs_gpu=key[0] == "gpu"))}
    assert time.monotonic() - started < 60
    assert ran.submitted[("gpu", "toy")]["num_gpus"] == 1 and ran.submitted[("cpu", "toy")]["num_gpus"] == 0
    assert ran.submitted[("cpu", "toy")]["max_retries"] == 3 and ran.submitted[("cpu", "toy")]["retry_exceptions"] is False
    assert out[("cpu", "toy")] == "ran cpu"
    assert "needs a GPU" in out[("gpu", "toy")] and "no node" in out[("gpu", "toy")]


def test_two_nodes_give_exactly_the_grades_of_local_grading(cluster, course, local_grades):
    grades, statuses = local_grades
    assert statuses["alice"]["toy"] == statuses["bob"]["toy"] == statuses["carol"]["toy"] == GRADED
    on_ray = Course(course.root, config=Config({"GradingLimits": {"ray_address": "auto"}}))  # the setting, not --ray
    records = _grade(on_ray)
    assert _statuses(records) == statuses
    assert _grades(course) == grades
    assert {(s, n): score for s, n, g, score in grades if g == "add_hidden"}[("bob", "toy")] == 0


def test_a_notebook_that_keeps_killing_its_worker_is_stopped_with_its_reason(cluster, course, tmp_path):
    marks = str(tmp_path)

    def runner(job):  # defined here, so Ray ships it by value
        import os
        import uuid

        open(os.path.join(marks, f"{job.student}-{uuid.uuid4().hex}"), "w").close()
        if job.student == "carol":
            os._exit(1)  # the worker process dies, as on a segfault or the OOM killer
        return grade_on_worker(job)

    records = _grade(course, RayCluster(max_tries=2, runner=runner), students=["alice", "carol"])
    carol = records["carol"].notebooks["toy"]
    assert carol.status == UNGRADED
    assert "died on each of 2 tries" in carol.reason and "not the student's fault" in carol.reason
    assert records["alice"].notebooks["toy"].status == GRADED
    assert len([m for m in os.listdir(marks) if m.startswith("carol-")]) == 2


def test_stopping_the_driver_kills_the_tasks_still_running(cluster, tmp_path):
    marks = str(tmp_path)

    def runner(job):
        import os
        import time

        if job.student == "quick":
            return None, "quick"
        open(os.path.join(marks, str(os.getpid())), "w").close()
        time.sleep(600)

    run = RayCluster(runner=runner).run([("slow", "toy"), ("quick", "toy")], lambda key: _job(key[0]))
    assert next(run)[0] == ("quick", "toy")
    deadline = time.monotonic() + 60
    while not os.listdir(marks) and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = int(os.listdir(marks)[0])
    assert psutil.pid_exists(pid)
    run.close()  # what Ctrl-C or SIGTERM does to the generator in autograde
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_killing_a_node_mid_run_loses_no_grade(cluster, course, local_grades, tmp_path):
    """Last in the module: it removes the worker node."""
    grades, statuses = local_grades
    marks = str(tmp_path)
    victim = cluster.worker.node_id

    def runner(job):
        import os
        import time

        import ray

        node = ray.get_runtime_context().get_node_id()
        open(os.path.join(marks, f"{job.student}-{node}"), "w").close()
        if node == victim:
            time.sleep(120)  # still running when its node is killed
        return grade_on_worker(job)

    def kill_the_worker_node():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any(m.endswith(victim) for m in os.listdir(marks)):
                cluster.remove_node(cluster.worker, allow_graceful=False)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_worker_node)
    killer.start()
    two = ["alice", "bob"]  # one task on each node at once
    records = _grade(course, RayCluster(max_tries=3, runner=runner, max_in_flight=2), students=two)
    killer.join()
    killed = [m.split("-")[0] for m in os.listdir(marks) if m.endswith(victim)]
    assert killed, "no task ran on the worker node: the test proved nothing"
    deadline = time.monotonic() + 60  # the head notices a dead node within its health-check period
    while any(n["NodeID"] == victim and n["Alive"] for n in ray.nodes()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not any(n["NodeID"] == victim and n["Alive"] for n in ray.nodes())  # the node is dead
    for student in killed:  # run again elsewhere
        assert any(m.startswith(student + "-") and not m.endswith(victim) for m in os.listdir(marks))
    assert _statuses(records) == {s: statuses[s] for s in two}
    assert _grades(course) == grades
