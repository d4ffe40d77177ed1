"""The notebook executor: one bad cell costs only its own points (timeouts, memory, crashes, wall time)."""
import os

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from eep590_utils.grading.execute import NotebookRunner, _tree_size
from eep590_utils.grading.sandbox import bwrap_path
from eep590_utils.grading.settings import Limits

pytestmark = pytest.mark.slow  # grades notebooks: kernels, nbgrader, seconds each

GiB = 2**30


def _run(tmp_path, sources, **limits):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    runner = NotebookRunner(nb, tmp_path, limits=Limits(**limits), use_sandbox=bwrap_path() is not None)
    return runner.run()


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _errors(cell):
    return [o.ename for o in cell.outputs if o.output_type == "error"]


@pytest.fixture(scope="module")
def bad_cells(tmp_path_factory):
    """A notebook with an endless loop that ignores SIGINT, a memory hog and a kernel crash between good cells."""
    sources = [
        "x = 1",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print('after loop', x)",
        "import numpy as np\nhog = np.ones(3 * 2**30 // 16)  # 1.5 GiB of float64\nhog += 1",
        "print('after hog', x + 1)",
        "import os\nos.kill(os.getpid(), 9)",
        "print('after crash', x + 2)",
        "raise ValueError('a plain student error')",
        "print('after error', x + 3)",
    ]
    return _run(tmp_path_factory.mktemp("exec"), sources, cell_timeout=15, notebook_timeout=300, memory_bytes=1 * GiB)


def test_endless_loop_times_out_and_later_cells_run_with_earlier_state(bad_cells):
    cells = bad_cells.notebook.cells
    assert _errors(cells[1]) == ["CellTimeoutError"]
    assert "15 s limit per cell" in cells[1].outputs[-1].evalue
    assert _text(cells[2]) == "after loop 1\n"


def test_memory_hog_is_killed_with_a_clear_reason(bad_cells):
    cells = bad_cells.notebook.cells
    assert _errors(cells[3]) == ["MemoryLimitError"]
    assert "memory limit" in cells[3].outputs[-1].evalue
    assert _text(cells[4]) == "after hog 2\n"


def test_kernel_crash_is_recorded_and_grading_goes_on(bad_cells):
    cells = bad_cells.notebook.cells
    assert _errors(cells[5]) == ["DeadKernelError"]
    assert _text(cells[6]) == "after crash 3\n"


def test_student_errors_are_ordinary_outputs(bad_cells):
    cells = bad_cells.notebook.cells
    assert _errors(cells[7]) == ["ValueError"]
    assert _text(cells[8]) == "after error 4\n"
    kinds = [kind for kind, _ in bad_cells.problems]
    assert kinds == ["timeout", "memory", "crash"]
    assert bad_cells.restarts == 3


def test_wall_time_limit_marks_the_rest_not_run(tmp_path):
    result = _run(tmp_path, ["import time", "time.sleep(1)", "time.sleep(60)", "print('never')", "print('nor this')"],
                  cell_timeout=40, notebook_timeout=15)
    cells = result.notebook.cells
    assert _errors(cells[1]) == []
    assert _errors(cells[2]) == ["NotebookTimeoutError"]
    assert _errors(cells[3]) == ["NotRun"] and _errors(cells[4]) == ["NotRun"]
    assert "wall-time" in [kind for kind, _ in result.problems]


def test_restart_budget_is_bounded(tmp_path):
    loop = "while True:\n    pass"
    result = _run(tmp_path, [loop, loop, loop, "print('unreached')"], cell_timeout=2, notebook_timeout=120,
                  memory_bytes=GiB, max_restarts=1)
    cells = result.notebook.cells
    assert _errors(cells[0]) == ["CellTimeoutError"] and _errors(cells[1]) == ["CellTimeoutError"]
    assert _errors(cells[2]) == ["NotRun"] and _errors(cells[3]) == ["NotRun"]
    assert result.restarts == 1


needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")


def _problems(result):
    return [kind for kind, _ in result.problems]


def test_replay_after_a_crash_keeps_the_notebook_deadline(tmp_path):
    # 4 s of set-up replayed after the crash would end past the 6 s wall time: the replay stops there
    result = _run(tmp_path, ["import time, os\ntime.sleep(4)", "os.kill(os.getpid(), 9)", "print('late')"],
                  cell_timeout=30, notebook_timeout=6)
    assert _errors(result.notebook.cells[2]) == ["NotRun"]
    assert "wall-time" in result.problems[-1][1] or "wall-time limit" in result.problems[-1][1]


@needs_sandbox
def test_sandbox_tmp_is_bounded(tmp_path):
    result = _run(tmp_path, ["data = b'x' * 2**20\ntry:\n    with open('/tmp/fill', 'wb') as f:\n        for _ in range(400):\n"
                             "            f.write(data)\n    print('wrote it all')\nexcept OSError as e:\n    print('full', e.errno)"],
                  cell_timeout=60, notebook_timeout=120, tmp_bytes=64 * 2**20)
    assert "full 28" in _text(result.notebook.cells[0])  # ENOSPC at 64 MiB, not 400 MiB of the grader's memory


@needs_sandbox
def test_memory_held_in_tmp_counts_against_the_memory_limit(tmp_path):
    fill = ("data = b'x' * 2**20\nwith open('/tmp/fill', 'wb') as f:\n    for _ in range(300):\n        f.write(data)\n"
            "import time; time.sleep(3)")
    result = _run(tmp_path, [fill, "print('after')"], cell_timeout=60, notebook_timeout=120,
                  memory_bytes=256 * 2**20, tmp_bytes=512 * 2**20)
    assert _errors(result.notebook.cells[0]) == ["MemoryLimitError"]
    assert "after" in _text(result.notebook.cells[1])


def test_disk_written_in_the_working_copy_is_bounded(tmp_path):
    fill = ("data = b'x' * 2**20\ntry:\n    with open('big.bin', 'wb') as f:\n        for _ in range(300):\n"
            "            f.write(data)\nexcept OSError as e:\n    print('refused', e.errno)\nimport time; time.sleep(3)")
    result = _run(tmp_path, [fill, "print('after')"], cell_timeout=60, notebook_timeout=120, disk_bytes=100 * 2**20)
    assert _errors(result.notebook.cells[0]) == ["DiskLimitError"] or "refused 27" in _text(result.notebook.cells[0])
    assert "after" in _text(result.notebook.cells[1])
    assert (tmp_path / "big.bin").stat().st_size <= 100 * 2**20


def test_disk_use_counts_what_files_hold(tmp_path):
    """A file counts its size in 4 KiB blocks, a sparse file only the blocks it has, a link nothing (so a file
    stopped by the file-size limit at exactly the disk limit is never over it, whatever the file system
    reserves past its end)."""
    (tmp_path / "a").write_bytes(b"x" * 10_000)  # 3 blocks of 4 KiB
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 4096)  # 1 block
    with open(tmp_path / "sparse", "wb") as f:  # 50 MiB long, one block written
        f.seek(50 * 2**20)
        f.write(b"x")
    os.symlink("/usr/bin", tmp_path / "link")
    size = _tree_size(tmp_path, 2**30)
    assert 4 * 4096 < size <= 4 * 4096 + 64 * 2**10  # the sparse file's block: at most 64 KiB on any file system
    exact = tmp_path / "exact"
    exact.write_bytes(b"z" * 2**20)
    assert _tree_size(exact.parent, 2**30) - size == 2**20


def test_processes_are_bounded(tmp_path):
    spawn = "import subprocess\nprocs = [subprocess.Popen(['sleep', '30']) for _ in range(40)]\nimport time; time.sleep(5)"
    result = _run(tmp_path, [spawn, "print('after')"], cell_timeout=60, notebook_timeout=120, max_processes=16)
    assert _errors(result.notebook.cells[0]) == ["ProcessLimitError"]
    assert "after" in _text(result.notebook.cells[1])


def test_kernels_are_shut_down_when_the_notebook_ends(tmp_path):
    import psutil

    from eep590_utils.grading import execute

    _run(tmp_path, ["import os\nos.kill(os.getpid(), 9)", "x = 1", "while True: pass"], cell_timeout=3, notebook_timeout=60)
    assert execute.live_kernels() == 0
    mine = psutil.Process().children(recursive=True)
    assert not [p for p in mine if "ipykernel" in " ".join(p.cmdline())]


def test_a_slow_kernel_start_is_not_taken_from_the_first_cell(tmp_path, monkeypatch):
    import asyncio

    from nbclient import NotebookClient

    original = NotebookClient.async_start_new_kernel_client

    async def slow(self):
        await asyncio.sleep(4)
        return await original(self)

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", slow)
    result = _run(tmp_path, ["print('first')"], cell_timeout=3, notebook_timeout=60)
    assert "first" in _text(result.notebook.cells[0]) and not result.problems
    assert result.kernel_start_s >= 4


def test_a_kernel_that_fails_to_start_is_retried(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    original, calls = NotebookClient.async_start_new_kernel_client, []

    async def flaky(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel didn't respond in 120 seconds")
        return await original(self)

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", flaky)
    result = _run(tmp_path, ["print('ran')"], cell_timeout=10, notebook_timeout=60)
    assert "ran" in _text(result.notebook.cells[0]) and len(calls) == 2


def test_a_kernel_that_never_starts_is_the_graders_fault(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from eep590_utils.grading.execute import GraderFault

    async def never(self):
        raise RuntimeError("Kernel didn't respond in 120 seconds")

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", never)
    with pytest.raises(GraderFault, match="did not start in 3 attempts"):
        _run(tmp_path, ["print('ran')"], cell_timeout=10, notebook_timeout=60)
