"""Warm kernels (grading/zygote.py): every notebook still gets a fresh, isolated kernel.

One notebook tries every channel to the next one (a value set, a module patched, files in /tmp, /dev/shm,
its folder's parent, the read-only root, another kernel's folder and process, the zygote's /proc entry,
a nested namespace to unmount what hides the pool); the next notebook, run after it and beside it, must
see none of it. The kernel also behaves as a cold one: inline plots, a crash kills only its kernel.
"""
import json
import os
import shutil
import textwrap
import threading

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from eep590_utils.grading import jobs
from eep590_utils.grading.execute import NotebookRunner, kernel_env
from eep590_utils.grading.sandbox import bwrap_path, kernel_data_env, sandbox_readonly_paths
from eep590_utils.grading.settings import Limits

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bwrap_path() is None, reason="warm kernels run only sandboxed (bubblewrap)")]
LIMITS = Limits(cell_timeout=60, notebook_timeout=300)

ATTACK = textwrap.dedent('''
    import builtins, json, os, subprocess, numpy, eep590_utils.checks as checks
    builtins.LEAKED = "from the first notebook"
    numpy.allclose = lambda *a, **k: True
    checks.check_close = lambda *a, **k: None
    report = {"pid": os.getpid(), "cwd": os.getcwd()}
    for path in ("/tmp/leak", "/dev/shm/leak", os.path.join(os.path.dirname(os.getcwd()), "leak"), "/leak", "/usr/leak"):
        try:
            open(path, "w").write("secret")
            report[path] = "written"
        except OSError as error:
            report[path] = type(error).__name__
    import signal
    killed, rooted = [], []
    me = int(os.readlink("/proc/self"))  # /proc is the zygote's: these are its PID numbers
    parent = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[1])
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in (me, parent):
            try:  # a /proc/<pid> folder is a pidfd: signal 0 checks whether it could be signalled
                fd = os.open(f"/proc/{name}", os.O_RDONLY | os.O_DIRECTORY)
                signal.pidfd_send_signal(fd, 0)
                killed.append(int(name))
            except OSError:
                pass
            try:
                rooted.append((name, os.listdir(f"/proc/{name}/root{os.path.dirname(os.getcwd())}")))
            except OSError:
                pass
    report["signalable"], report["rooted"] = killed, rooted
    report["unmount"] = subprocess.run(["unshare", "-Urm", "sh", "-c", "umount -l /tmp 2>&1; ls /tmp 2>&1"],
                                       capture_output=True, text=True).stdout
    open("report.json", "w").write(json.dumps(report))
''')

PROBE = textwrap.dedent('''
    import builtins, json, os, time, numpy, eep590_utils.checks as checks
    other = json.load(open(os.environ.get("OTHER_REPORT", "/nonexistent"))) if os.environ.get("OTHER_REPORT") else {}
    seen = {"leaked": hasattr(builtins, "LEAKED"), "allclose_patched": bool(numpy.allclose([1.0], [2.0])),
            "check_close_patched": checks.check_close.__module__ != "eep590_utils.checks",
            "tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm") if os.path.isdir("/dev/shm") else [],
            "parent": sorted(os.listdir(os.path.dirname(os.getcwd())))}
    open("seen.json", "w").write(json.dumps(seen))
''')


@pytest.fixture(scope="module")
def zygote():
    readonly, env = sandbox_readonly_paths(), kernel_data_env()
    zygote = jobs.warm_zygote(1, readonly, env)
    assert zygote is not None, "the zygote did not start"
    yield zygote
    jobs.close_zygotes()


def run(zygote, name, code, env=None):
    workdir = os.path.join(zygote.pool, name)
    os.makedirs(workdir)
    nb = new_notebook(cells=[new_code_cell(code)])
    runner = NotebookRunner(nb, workdir, limits=LIMITS, sandbox_readonly=sandbox_readonly_paths(),
                            env=dict(kernel_data_env(), **(env or {})), zygote=zygote)
    assert runner.zygote is zygote, "the runner did not take the warm path"
    result = runner.run()
    return result, workdir


def test_nothing_of_one_notebook_reaches_the_next(zygote):
    attack, attack_dir = run(zygote, "attacker", ATTACK)
    assert not attack.problems, attack.problems
    report = json.load(open(os.path.join(attack_dir, "report.json")))
    assert report["/leak"] != "written" and report["/usr/leak"] != "written", report  # the root is read-only
    assert report["signalable"] == [], f"it could signal processes outside its kernel: {report['signalable']}"
    assert report["rooted"] == [], f"it could look into another process's root: {report['rooted']}"
    listed = {line for line in report["unmount"].splitlines() if not line.startswith("umount")}
    assert listed <= {os.path.basename(zygote.pool), "home", "leak"}, report["unmount"]  # mounts are locked
    probe, probe_dir = run(zygote, "probe", PROBE)
    assert not probe.problems, probe.problems
    seen = json.load(open(os.path.join(probe_dir, "seen.json")))
    assert not seen["leaked"] and not seen["allclose_patched"] and not seen["check_close_patched"], seen
    assert set(seen["tmp"]) <= {"home", os.path.basename(zygote.pool)} and seen["shm"] == [], seen  # fresh /tmp, /dev/shm
    assert "leak" not in seen["parent"] and "attacker" not in seen["parent"], seen
    assert sorted(p.split("-")[0] for p in seen["parent"]) == ["eep590", "probe"], seen  # its own two folders only


def test_a_running_notebook_cannot_reach_its_neighbour(zygote):
    slow = "import time, os\nopen('alive', 'w').write(str(os.getpid()))\ntime.sleep(8)\nprint('still here')"
    done = {}
    neighbour = threading.Thread(target=lambda: done.update(result=run(zygote, "neighbour", slow)))
    neighbour.start()
    neighbour_dir = os.path.join(zygote.pool, "neighbour")
    attack, attack_dir = run(zygote, "attacker2", ATTACK + textwrap.dedent(f'''
        try:
            os.listdir({neighbour_dir!r})
            report["neighbour"] = "listed"
        except OSError as error:
            report["neighbour"] = type(error).__name__
        open("report.json", "w").write(json.dumps(report))
    '''))
    neighbour.join()
    report = json.load(open(os.path.join(attack_dir, "report.json")))
    assert report["neighbour"] == "FileNotFoundError" and report["signalable"] == [] and report["rooted"] == []
    result, _ = done["result"]
    assert not result.problems and "still here" in result.notebook.cells[0].outputs[0]["text"]


def test_a_warm_kernel_plots_inline_and_a_crash_costs_only_its_kernel(zygote):
    plot, _ = run(zygote, "plot", "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    assert [o["output_type"] for o in plot.notebook.cells[0].outputs] == ["display_data"]
    assert "image/png" in plot.notebook.cells[0].outputs[0]["data"]
    workdir = os.path.join(zygote.pool, "crash")
    os.makedirs(workdir)
    nb = new_notebook(cells=[new_code_cell("import os\nos.kill(os.getpid(), 9)"), new_code_cell("print('after')")])
    result = NotebookRunner(nb, workdir, limits=LIMITS, sandbox_readonly=sandbox_readonly_paths(),
                            env=kernel_data_env(), zygote=zygote).run()
    assert [kind for kind, _ in result.problems] == ["crash"] and result.restarts == 1
    assert nb.cells[1].outputs[0]["text"] == "after\n"
    assert zygote.alive


def test_a_dead_zygote_is_replaced(zygote):
    first = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())
    first.process.kill()  # dies between two notebooks: the next start must not cost the notebook anything
    first.process.wait()
    assert_graded_by_a_cold_kernel(first)
    second = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())
    assert second is not first and second.alive and not os.path.exists(first.pool)
    result, _ = run(second, "after-restart", "print(1 + 1)")
    assert result.notebook.cells[0].outputs[0]["text"] == "2\n"


def test_kernels_forked_warm_have_the_cold_kernels_environment(zygote):
    code = "import os, json\nopen('env.json', 'w').write(json.dumps(dict(os.environ)))"
    current = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())  # (replaced by the test above)
    _, workdir = run(current, "env", code, env={"EXTRA": "1"})
    env = json.load(open(os.path.join(workdir, "env.json")))
    expected = kernel_env(dict(kernel_data_env(), EXTRA="1"), 1)
    for key, value in expected.items():
        assert env.get(key) == value, key
    assert shutil.which("unshare"), "util-linux's unshare is needed by the attack above"


def test_a_warm_kernel_obeys_every_limit(zygote):
    current = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())
    workdir = os.path.join(current.pool, "limits")
    os.makedirs(workdir)
    sources = [
        "x = 1",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "import numpy as np\nhog = np.ones(3 * 2**30 // 8)\nhog += 1",
        "data = b'x' * 2**20\nwith open('big.bin', 'wb') as f:\n    for _ in range(300):\n        f.write(data)\n"
        "import time; time.sleep(3)",
        "import subprocess\nprocs = [subprocess.Popen(['sleep', '30']) for _ in range(40)]\nimport time; time.sleep(5)",
        "data = b'x' * 2**20\ntry:\n    with open('/tmp/fill', 'wb') as f:\n        for _ in range(400):\n"
        "            f.write(data)\nexcept OSError as e:\n    print('full', e.errno)",
        "print('after all', x)",
    ]
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    limits = Limits(cell_timeout=20, notebook_timeout=600, memory_bytes=int(1.5 * 2**30), disk_bytes=100 * 2**20,
                    max_processes=16, tmp_bytes=64 * 2**20)
    result = NotebookRunner(nb, workdir, limits=limits, sandbox_readonly=sandbox_readonly_paths(),
                            env=kernel_data_env(), zygote=current).run()
    errors = [[o["ename"] for o in cell.outputs if o["output_type"] == "error"] for cell in nb.cells]
    assert errors[1] == ["CellTimeoutError"] and errors[2] == ["MemoryLimitError"], result.problems
    assert errors[3] in (["DiskLimitError"], ["OSError"]) and errors[4] == ["ProcessLimitError"], result.problems
    texts = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
    assert "full 28" in texts[5], (texts, result.problems)  # ENOSPC at 64 MiB: the kernel's own small /tmp
    assert texts[6] == "after all 1\n", (texts, result.problems)
    assert result.restarts == (3 if errors[3] == ["OSError"] else 4)  # a refused write is the student's error
    assert os.path.getsize(os.path.join(workdir, "big.bin")) <= 100 * 2**20


def test_where_no_zygote_can_start_kernels_start_cold(monkeypatch):
    from eep590_utils.grading.zygote import ZygoteError

    def refuse(*args, **kwargs):
        raise ZygoteError("forked kernels cannot be isolated here (unshare: Operation not permitted)")

    jobs.close_zygotes()
    monkeypatch.setattr(jobs, "Zygote", refuse)
    nb = new_notebook(cells=[new_code_cell("import sys\nprint(sys.argv[0].endswith('ipykernel_launcher.py'))")])
    job = jobs.NotebookJob("alice", "toy", nbformat.writes(nb), limits=LIMITS)
    result = jobs.run_job(job)
    assert result.notebook.cells[0].outputs[0]["text"] == "True\n"  # a cold kernel: its own Python, its own argv
    assert jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env()) is None  # not retried every notebook
    jobs.close_zygotes()


def assert_graded_by_a_cold_kernel(zygote):
    """A notebook offered ``zygote`` is graded all the same, by a cold kernel (its own Python, its own argv)."""
    workdir = os.path.join(zygote.pool, "cold")
    os.makedirs(workdir)
    nb = new_notebook(cells=[new_code_cell("import sys\nprint(sys.argv[0].endswith('ipykernel_launcher.py'))")])
    result = NotebookRunner(nb, workdir, limits=LIMITS, sandbox_readonly=sandbox_readonly_paths(),
                            env=kernel_data_env(), zygote=zygote).run()
    assert not result.problems and nb.cells[0].outputs[0]["text"] == "True\n"


def test_a_zygote_that_keeps_failing_is_retired_replaced_and_then_given_up(monkeypatch):
    """Alive but failing to fork: each failure costs the notebook nothing (a cold kernel), and after
    RETIRE_AFTER failures in a row the zygote is retired (its running kernels are left alone: it is not
    killed) and replaced; after MAX_RETIRED of them kernels start cold for the rest of the run."""
    from eep590_utils.grading.zygote import RETIRE_AFTER, ZygoteError

    jobs.close_zygotes()
    first = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())

    def cannot_fork(*args, **kwargs):
        raise ZygoteError("the zygote could not fork a kernel (clone: out of memory)")

    monkeypatch.setattr(first, "spawn", cannot_fork)
    assert_graded_by_a_cold_kernel(first)  # the runner counts its failed start
    for _ in range(RETIRE_AFTER - 2):
        first.note_start(ok=False)
    assert first.usable
    first.note_start(ok=False)  # RETIRE_AFTER in a row, the runner's included
    assert first.retired and first.alive
    second = jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env())
    assert second is not first and second.usable
    assert first.alive and os.path.isdir(first.pool)  # retired, not killed: kernels it gave run on
    for _ in range(RETIRE_AFTER - 1):
        second.note_start(ok=False)
    second.note_start(ok=True)  # a kernel given in between: the count starts again
    for _ in range(RETIRE_AFTER - 1):
        second.note_start(ok=False)
    assert second.usable
    second.note_start(ok=False)
    assert jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env()) is None
    assert jobs.warm_zygote(1, sandbox_readonly_paths(), kernel_data_env()) is None  # given up for the run
    jobs.close_zygotes()
    assert not first.alive and not second.alive and not os.path.exists(first.pool)
