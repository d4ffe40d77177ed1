"""Execute one notebook for grading: cell by cell, in a (sandboxed) kernel, within limits.

A cell that runs past the per-cell timeout, exhausts the memory limit or kills its kernel gets an
error output saying so (so its test scores 0); the kernel is then restarted, the cells that ran
before are replayed silently, and grading goes on with the next cell, so one bad cell costs only
its own points. Cells that cannot run (the notebook's wall-time limit, too many restarts) get a
``NotRun`` error output: nbgrader gives full marks to a test cell with no output, never to one
with an error.
"""
import asyncio
import copy
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import List

from .sandbox import Sandbox

GiB = 2**30


@dataclass
class Limits:
    cell_timeout: float = 120.0  # seconds for one cell
    notebook_timeout: float = 900.0  # seconds for the whole notebook, restarts included
    memory_bytes: int = 4 * GiB  # resident memory of the kernel and its children
    max_restarts: int = 5  # kernel restarts after a timeout, memory kill or crash


@dataclass
class ExecutionResult:
    notebook: nbformat.NotebookNode
    problems: list = field(default_factory=list)  # (kind, message): kind in timeout, memory, crash, wall-time, not-run
    kernel_start_s: float = 0.0
    cell_seconds: list = field(default_factory=list)  # (cell index, role, seconds)
    restarts: int = 0

    @property
    def problem_kinds(self):
        return sorted({kind for kind, _ in self.problems})


# Run (on one line, so tracebacks keep their line numbers but one) before every test cell: a student who
# rebinds check_close, or patches eep590_utils.checks, cannot make the tests pass that way.
FRESH_CHECKS = ("import importlib as _eep590_il, eep590_utils.checks as _eep590_checks; _eep590_il.reload(_eep590_checks); "
                "from eep590_utils.checks import check_close, check_shape, check_type, check_true; "
                "del _eep590_il, _eep590_checks\n")

_ERROR_NAMES = {"timeout": "CellTimeoutError", "wall-time": "NotebookTimeoutError",
                "memory": "MemoryLimitError", "crash": "DeadKernelError"}


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel command is prefixed by a sandbox (bubblewrap) command."""

    sandbox_prefix = List([], help="argv prefix that jails the kernel process").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        return list(self.sandbox_prefix) + super().format_kernel_cmd(extra_arguments)


def cell_role(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "student"
    return "given"


def _error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class _MemoryWatch(threading.Thread):
    """Kills the kernel's process tree when its resident memory passes ``limit`` bytes."""

    def __init__(self, km, limit, interval=0.1):
        super().__init__(daemon=True)
        self.km, self.limit, self.interval = km, limit, interval
        self.tripped_at = None  # bytes in use when the limit was passed
        self._stop = threading.Event()

    def _tree(self):
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or process.poll() is not None:
            return []
        try:
            root = psutil.Process(process.pid)
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []

    def run(self):
        while not self._stop.wait(self.interval):
            procs = self._tree()
            used = 0
            for proc in procs:
                try:
                    used += proc.memory_info().rss
                except psutil.Error:
                    pass
            if used > self.limit:
                self.tripped_at = used
                for proc in reversed(procs):
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass

    def stop(self):
        self._stop.set()


def kernel_env(workdir, extra=None, threads=1):
    """The kernel's whole environment: nothing of the grader's own leaks into it."""
    env = {
        "PATH": os.path.dirname(os.path.realpath(os.sys.executable)) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "NBGRADER_EXECUTION": "autograde",
        "JUPYTER_PLATFORM_DIRS": "1",
        "TQDM_MININTERVAL": "5",
    }
    venv_bin = os.path.dirname(os.sys.executable)
    env["PATH"] = venv_bin + ":" + env["PATH"]
    env.update(extra or {})
    return env


def _matplotlib_cache_copy(dest):
    """A writable copy of the grader's matplotlib cache (saves each kernel a font scan)."""
    import shutil

    try:
        import matplotlib

        shutil.copytree(matplotlib.get_cachedir(), dest)
    except Exception:
        os.makedirs(dest, exist_ok=True)
    return dest


class NotebookRunner:
    """Runs one notebook; ``run()`` returns an :class:`ExecutionResult`."""

    def __init__(self, nb, workdir, limits=None, sandbox_readonly=(), use_sandbox=True, env=None, threads=1,
                 fresh_checks=True):
        self.fresh_checks = fresh_checks  # test cells get eep590_utils' checks afresh (see FRESH_CHECKS)
        self.nb = nb
        self.workdir = os.path.abspath(workdir)
        self.limits = limits or Limits()
        self.sandbox_readonly = list(sandbox_readonly)
        self.use_sandbox = use_sandbox
        self.env = kernel_env(self.workdir, env, threads)
        self.result = ExecutionResult(notebook=nb)

    def run(self):
        with tempfile.TemporaryDirectory(prefix="eep590-kernel-") as ipc:
            asyncio.run(self._run(ipc))
        return self.result

    def _make_client(self, ipc, session):
        """A new kernel manager and client; each kernel (first or restarted) gets fresh sockets."""
        sockets = os.path.join(ipc, f"kernel{session}")
        os.makedirs(sockets)
        km = SandboxedKernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=os.path.join(sockets, "k"),
            connection_file=os.path.join(sockets, "kernel.json"),
        )
        if self.use_sandbox:
            sandbox = Sandbox(self.workdir, readonly=self.sandbox_readonly, writable=[ipc])
            km.sandbox_prefix = sandbox.wrap([])
        # the kernel's matplotlib/ipython state lives in its private home inside the sandbox
        self.env.setdefault("MPLCONFIGDIR", _matplotlib_cache_copy(os.path.join(ipc, "mpl")))
        self.env.setdefault("IPYTHONDIR", os.path.join(ipc, "ipython"))
        self.env.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(ipc, "runtime"))
        client = NotebookClient(
            self.nb,
            km=km,
            timeout=self.limits.cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=False,
            record_timing=True,
            shutdown_kernel="immediate",
            startup_timeout=120,
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
            resources={"metadata": {"path": self.workdir}},
        )
        return client, km

    def _mark_not_run(self, indices, reason):
        for index in indices:
            self.nb.cells[index].outputs = [_error_output("NotRun", reason)]
            self.result.problems.append(("not-run", f"cell {index}: {reason}"))

    async def _run(self, ipc):
        """Run the code cells in order. After a timeout, memory kill or crash, a new kernel replays the
        cells that ran before (on copies, outputs dropped) and execution goes on with the next cell."""
        start = time.monotonic()
        deadline = start + self.limits.notebook_timeout
        order = [i for i, cell in enumerate(self.nb.cells) if cell.cell_type == "code" and cell.source.strip()]
        position, replay, session = 0, [], 0
        while position < len(order):
            if session > 0:
                if self.result.restarts >= self.limits.max_restarts:
                    self._mark_not_run(order[position:], f"not run: the kernel was restarted {self.result.restarts} times already")
                    return
                self.result.restarts += 1
            session += 1
            position = await self._session(ipc, session, order, position, replay, start, deadline)

    async def _session(self, ipc, session, order, position, replay, start, deadline):
        """One kernel's life: replay, then run cells from ``order[position]`` until done or a problem;
        returns the position to go on from (``len(order)`` when finished)."""
        client, km = self._make_client(ipc, session)
        watch = _MemoryWatch(km, self.limits.memory_bytes)
        t0 = time.monotonic()
        async with client.async_setup_kernel(
            env=self.env, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ):
            await client.kc.wait_for_ready(timeout=120)
            self.result.kernel_start_s += time.monotonic() - t0
            watch.start()
            try:
                for index, cell in replay:
                    client.timeout = self.limits.cell_timeout
                    await client.async_execute_cell(copy.deepcopy(cell), index)
            except Exception:  # timeout, dead kernel, lost connection while replaying
                watch.stop()
                self._mark_not_run(order[position:], "not run: the kernel could not be restarted after the problem above")
                return len(order)
            try:
                while position < len(order):
                    index = order[position]
                    cell = self.nb.cells[index]
                    position += 1
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._mark_not_run(order[position - 1:], f"not run: the notebook used up its {self.limits.notebook_timeout:.0f} s wall-time limit")
                        return len(order)
                    client.timeout = max(1, int(min(self.limits.cell_timeout, remaining)))
                    problem = await self._execute(client, watch, cell, index, remaining < self.limits.cell_timeout)
                    if problem is None:
                        replay.append((index, cell))
                        continue
                    kind, message = problem
                    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    label = f"cell {index}" + (f" ({grade_id})" if grade_id else "")
                    self.result.problems.append((kind, f"{label}: {message}"))
                    cell.outputs = list(cell.get("outputs", [])) + [_error_output(_ERROR_NAMES[kind], message)]
                    if kind == "wall-time":
                        self._mark_not_run(order[position:], f"not run: the notebook used up its {self.limits.notebook_timeout:.0f} s wall-time limit")
                        return len(order)
                    return position  # a new kernel goes on from the next cell
                return position
            finally:
                watch.stop()

    async def _execute(self, client, watch, cell, index, cut_by_wall_time):
        """Run one cell; None when it ran (errors in it are the student's own), else (kind, message)."""
        t0 = time.monotonic()
        problem = None
        original = cell.source
        if self.fresh_checks and cell_role(cell) == "test":
            cell.source = FRESH_CHECKS + original
        try:
            await client.async_execute_cell(cell, index)
        except CellTimeoutError:
            if cut_by_wall_time:
                problem = ("wall-time", f"the notebook passed its {self.limits.notebook_timeout:.0f} s wall-time limit in this cell")
            else:
                problem = ("timeout", f"this cell ran longer than the {self.limits.cell_timeout:.0f} s limit per cell and was stopped")
        except DeadKernelError:
            if watch.tripped_at:
                problem = ("memory", f"this cell used {watch.tripped_at / GiB:.1f} GiB, more than the "
                                     f"{self.limits.memory_bytes / GiB:.1f} GiB memory limit, and was stopped")
            else:
                problem = ("crash", "the kernel died while running this cell")
        finally:
            cell.source = original
        self.result.cell_seconds.append((index, cell_role(cell), time.monotonic() - t0))
        return problem
