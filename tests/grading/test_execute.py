"""The notebook executor: one bad cell costs only its own points (timeouts, memory, crashes, wall time)."""
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from eep590_utils.grading.execute import Limits, NotebookRunner
from eep590_utils.grading.sandbox import bwrap_path

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
