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

from . import cells
from .sandbox import Sandbox, kill_all, kill_tree
from .settings import Limits

GiB = 2**30


@dataclass
class ExecutionResult:
    notebook: nbformat.NotebookNode
    problems: list = field(default_factory=list)  # (kind, message): kind in timeout, memory, crash, wall-time, not-run
    kernel_start_s: float = 0.0
    cell_seconds: list = field(default_factory=list)  # (cell index, role, seconds)
    restarts: int = 0
    grader_fault: str = ""  # the grader could not run this notebook (kernel never started): not the student's


class GraderFault(RuntimeError):
    """The grader could not do its part (a kernel that never started): retried, never scored as the student's."""


class Cancelled(RuntimeError):
    """Grading was stopped (SIGTERM, Ctrl-C): every kernel is killed and nothing more runs."""


# Set by the grader when it is told to stop; every runner checks it between cells and kills its kernel.
CANCEL = threading.Event()
_LIVE = set()  # psutil.Process of every kernel (its sandbox) alive now, for kill_all_kernels()
_LIVE_LOCK = threading.Lock()


def kill_all_kernels():
    """Kill every kernel this process started and that is still alive (on SIGTERM or Ctrl-C)."""
    CANCEL.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        kill_tree(proc.pid)


def live_kernels():
    """How many kernels this process has alive now."""
    with _LIVE_LOCK:
        return sum(1 for p in _LIVE if p.is_running())


# Run (on one line, so tracebacks keep their line numbers but one) before every test cell: a student who
# rebinds check_close, or patches eep590_utils.checks, cannot make the tests pass that way.
FRESH_CHECKS = ("import importlib as _eep590_il, eep590_utils.checks as _eep590_checks; _eep590_il.reload(_eep590_checks); "
                "from eep590_utils.checks import check_close, check_shape, check_type, check_true; "
                "del _eep590_il, _eep590_checks\n")

_ERROR_NAMES = {"timeout": "CellTimeoutError", "wall-time": "NotebookTimeoutError",
                "memory": "MemoryLimitError", "crash": "DeadKernelError", "disk": "DiskLimitError",
                "processes": "ProcessLimitError"}


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel command is prefixed by a sandbox (bubblewrap) command."""

    sandbox_prefix = List([], help="argv prefix that jails the kernel process").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd and os.path.isabs(cmd[0]):  # "<cwd>/../.venv/bin/python" names folders the sandbox does not have
            cmd[0] = os.path.normpath(cmd[0])
        return list(self.sandbox_prefix) + cmd


def cell_role(cell):
    if cells.is_test(cell):
        return "test"
    if cells.is_solution(cell):
        return "student"
    return "given"


VERDICT = "eep590_verdict"  # metadata of the partial-credit result a judge gives (the only one scored)


def _error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _tree_size(path, limit):
    """Bytes under ``path`` (files only, links not followed); stops counting past ``limit``. A file counts
    what it holds: its size in 4 KiB blocks, but never more than the blocks it has (a sparse file's holes
    are free), and never the blocks a file system reserves past its end for a file being written (XFS
    and ext4 do): a file the kernel's file-size limit stopped at exactly the disk limit is not over it."""
    total, stack = 0, [path]
    while stack and total <= limit:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        total += min(info.st_blocks * 512, -(-info.st_size // 4096) * 4096)
        except OSError:
            pass
    return total


class _ResourceWatch(threading.Thread):
    """Kills the kernel's process tree when it passes a limit: resident memory (plus the sandbox's
    in-memory /tmp), processes alive, or bytes written into the working copy."""

    def __init__(self, km, limits, workdir, interval=0.1):
        super().__init__(daemon=True)
        self.km, self.limits, self.workdir, self.interval = km, limits, workdir, interval
        self.tripped = None  # (kind, message) once a limit was passed
        self._halt = threading.Event()

    def _tree(self):
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or process.poll() is not None:
            return []
        try:
            root = psutil.Process(process.pid)
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []

    def _tmp_used(self, procs):
        """Bytes held in the sandbox's /tmp (a tmpfs: memory that no process's RSS shows)."""
        for proc in procs[1:2]:  # the sandboxed process: its root is the sandbox's
            try:
                st = os.statvfs(f"/proc/{proc.pid}/root/tmp")
                return (st.f_blocks - st.f_bfree) * st.f_frsize
            except OSError:
                return 0
        return 0

    def _check(self, procs, tick):
        lim = self.limits
        if len(procs) > lim.max_processes:
            return "processes", (f"this cell started more than {lim.max_processes} processes at once "
                                 f"({len(procs)}) and was stopped")
        used = 0
        for proc in procs:
            try:
                used += proc.memory_info().rss
            except psutil.Error:
                pass
        used += self._tmp_used(procs)
        if used > lim.memory_bytes:
            return "memory", (f"this cell used {used / GiB:.1f} GiB, more than the "
                              f"{lim.memory_bytes / GiB:.1f} GiB memory limit, and was stopped")
        if tick % 10 == 0:  # the disk once a second: a walk of the working copy costs more than a ps
            written = _tree_size(self.workdir, lim.disk_bytes)
            if written > lim.disk_bytes:
                return "disk", (f"this cell wrote more than the {lim.disk_bytes / GiB:.1f} GiB allowed "
                                f"in the notebook's folder and was stopped")
        return None

    def run(self):
        tick = 0
        while not self._halt.wait(self.interval):
            procs = self._tree()
            if not procs:
                continue
            tripped = self._check(procs, tick)
            tick += 1
            if tripped:
                self.tripped = tripped
                kill_tree(procs[0].pid)

    def stop(self):
        self._halt.set()


def kernel_env(extra=None, threads=1):
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


def matplotlib_cache_copy(dest):
    """A writable copy of the grader's matplotlib cache (saves each kernel a font scan)."""
    import shutil

    try:
        import matplotlib

        shutil.copytree(matplotlib.get_cachedir(), dest)
    except Exception:
        os.makedirs(dest, exist_ok=True)
    return dest


def _rlimit_prefix(limits):
    """``prlimit`` arguments that bound what one kernel can create: file size (the disk limit) and, for
    a non-root grader, the number of processes of its user. The resource watch bounds both as well."""
    import shutil

    prlimit = shutil.which("prlimit")
    if not prlimit:
        return []
    args = [prlimit, f"--fsize={limits.disk_bytes}"]
    if os.geteuid() != 0:  # root is exempt from RLIMIT_NPROC: the watch bounds it there
        args.append(f"--nproc={limits.max_processes * 8}")
    return args + ["--"]


class NotebookRunner:
    """Runs one notebook; ``run()`` returns an :class:`ExecutionResult`.

    Every kernel it starts is shut down and its process tree killed when the kernel's session ends, so a
    worker has at most one kernel alive at any time. A kernel that does not start is retried
    (``Limits.start_attempts``); if none starts, :class:`GraderFault` is raised: the grader's failure,
    not the student's. Kernel start never comes out of a cell's time.
    """

    def __init__(self, nb, workdir, limits=None, sandbox_readonly=(), use_sandbox=True, env=None, threads=1,
                 fresh_checks=True, judges=None, seed=0, gpu=False, zygote=None):
        self.fresh_checks = fresh_checks  # test cells get eep590_utils' checks afresh (see FRESH_CHECKS)
        self.judges = dict(judges or {})  # grade_id -> judge: that test cell is judged outside the kernel
        self.seed = seed  # the run's seed: every judge draws its inputs from it
        self.gpu = gpu  # the sandbox exposes the GPU devices, and the kernel sees CUDA_VISIBLE_DEVICES
        self.nb = nb
        self.workdir = os.path.abspath(workdir)
        self.limits = limits or Limits()
        self.sandbox_readonly = list(sandbox_readonly)
        self.use_sandbox = use_sandbox
        self.env = kernel_env(env, threads)
        if gpu and os.environ.get("CUDA_VISIBLE_DEVICES") is not None:  # e.g. the GPU Ray gave this task
            self.env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        self.result = ExecutionResult(notebook=nb)
        # warm kernels (grading/zygote.py): forked by a sandboxed zygote, which needs the working copy under its pool
        usable = zygote is not None and use_sandbox and not gpu and zygote.holds(self.workdir)
        self.zygote = zygote if usable else None

    def run(self):
        pool = self.zygote.pool if self.zygote else None
        with tempfile.TemporaryDirectory(prefix=f"eep590-kernel-{os.getpid()}-", dir=pool) as ipc:
            # the kernel's matplotlib/ipython state lives in its private folder (once, not per restart)
            self.env.setdefault("MPLCONFIGDIR", matplotlib_cache_copy(os.path.join(ipc, "mpl")))
            self.env.setdefault("IPYTHONDIR", os.path.join(ipc, "ipython"))
            self.env.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(ipc, "runtime"))
            asyncio.run(self._run(ipc))
        return self.result

    def _make_client(self, ipc, session):
        """A new kernel manager and client; each kernel (first or restarted) gets fresh sockets."""
        sockets = os.path.join(ipc, f"kernel{session}")
        os.makedirs(sockets)
        if self.zygote:
            from .zygote import make_kernel_manager_class

            manager = make_kernel_manager_class()
        else:
            manager = SandboxedKernelManager
        km = manager(
            kernel_name="python3",
            transport="ipc",
            ip=os.path.join(sockets, "k"),
            connection_file=os.path.join(sockets, "kernel.json"),
        )
        prefix = _rlimit_prefix(self.limits)
        if self.zygote:  # the zygote's own sandbox, then a fresh namespace per kernel (no bwrap, no prlimit)
            km.zygote = self.zygote
            km.spawn_options = {"bind": [self.workdir, ipc], "tmp_bytes": self.limits.tmp_bytes,
                                "fsize": self.limits.disk_bytes}
            prefix = []
        elif self.use_sandbox:
            sandbox = Sandbox(self.workdir, readonly=self.sandbox_readonly, writable=[ipc], tmp_bytes=self.limits.tmp_bytes,
                              gpu=self.gpu)
            prefix = prefix + sandbox.wrap([])
        km.sandbox_prefix = prefix
        client = NotebookClient(
            self.nb,
            km=km,
            timeout=self.limits.cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=False,
            record_timing=True,
            shutdown_kernel="immediate",
            startup_timeout=int(self.limits.start_timeout),
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
            resources={"metadata": {"path": self.workdir}},
        )
        return client, km

    def _mark_not_run(self, indices, reason):
        for index in indices:
            self.nb.cells[index].outputs = [_error_output("NotRun", reason)]
            self.result.problems.append(("not-run", f"cell {index}: {reason}"))

    def _wall_time_reason(self):
        return f"not run: the notebook used up its {self.limits.notebook_timeout:.0f} s wall-time limit"

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
            position = await self._session(ipc, session, order, position, replay, deadline)

    async def _start(self, ipc, session):
        """A started kernel and its client, retried up to ``start_attempts`` times; raises GraderFault."""
        failure = None
        for attempt in range(self.limits.start_attempts):
            if CANCEL.is_set():
                raise Cancelled("grading was stopped")
            client, km = self._make_client(ipc, f"{session}-{attempt}")
            t0 = time.monotonic()
            try:
                await client.async_start_new_kernel(env=self.env, cwd=self.workdir, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
                self._register(km)
                await client.async_start_new_kernel_client()
                self.result.kernel_start_s += time.monotonic() - t0
                if self.zygote:
                    self.zygote.note_start(ok=True)
                return client, km
            except Exception as error:  # did not start, or did not answer in start_timeout
                failure = f"{type(error).__name__}: {error}"
                await self._shutdown(client, km)
                if self.zygote:  # a zygote that keeps failing is retired (jobs.warm_zygote replaces it)
                    self.zygote.note_start(ok=False)
                self.zygote = None  # the next attempt starts a cold kernel: a zygote's trouble is never the notebook's
        raise GraderFault(f"the kernel did not start in {self.limits.start_attempts} attempts ({failure})")

    @staticmethod
    def _register(km):
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None:
            try:
                km._eep590_process = psutil.Process(process.pid)
            except psutil.Error:
                return
            with _LIVE_LOCK:
                _LIVE.add(km._eep590_process)

    @staticmethod
    async def _shutdown(client, km):
        """Stop the client, shut the kernel down and kill whatever is left of its process tree; return
        only when every process of the tree is gone (the next kernel of this worker may then start)."""
        process = getattr(km, "_eep590_process", None)
        tree = []
        if process is not None:
            try:  # the tree before shutdown: once the sandbox dies its children are reparented
                tree = [process] + process.children(recursive=True)
            except psutil.Error:
                tree = [process]
        try:
            if getattr(client, "kc", None) is not None:
                client.kc.stop_channels()
            if km.has_kernel:
                await asyncio.wait_for(km.shutdown_kernel(now=True), timeout=10)
        except Exception:
            pass
        finally:
            kill_all(tree, timeout=10)
            if process is not None:
                with _LIVE_LOCK:
                    _LIVE.discard(process)
            try:
                await km._async_cleanup_resources()
            except Exception:
                pass

    async def _session(self, ipc, session, order, position, replay, deadline):
        """One kernel's life: replay, then run cells from ``order[position]`` until done or a problem;
        returns the position to go on from (``len(order)`` when finished)."""
        client, km = await self._start(ipc, session)
        watch = _ResourceWatch(km, self.limits, self.workdir)
        watch.start()
        try:
            for index, cell in replay:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or CANCEL.is_set():
                    break
                client.timeout = max(1, int(min(self.limits.cell_timeout, remaining)))
                try:
                    await client.async_execute_cell(copy.deepcopy(cell), index)
                except Exception:  # timeout, dead kernel, lost connection while replaying
                    if CANCEL.is_set():
                        raise Cancelled("grading was stopped") from None
                    self._mark_not_run(order[position:], "not run: the kernel could not be restarted after the problem above")
                    return len(order)
            if CANCEL.is_set():
                raise Cancelled("grading was stopped")
            if deadline - time.monotonic() <= 0:
                self._mark_not_run(order[position:], self._wall_time_reason())
                return len(order)
            while position < len(order):
                if CANCEL.is_set():
                    raise Cancelled("grading was stopped")
                index = order[position]
                cell = self.nb.cells[index]
                position += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._mark_not_run(order[position - 1:], self._wall_time_reason())
                    return len(order)
                client.timeout = max(1, int(min(self.limits.cell_timeout, remaining)))
                if cell_role(cell) == "test" and cells.grade_id(cell) in self.judges:
                    problem = await self._judge(client, watch, cell, index, remaining)
                    if problem is None:
                        continue  # a judged cell changes nothing in the kernel worth replaying
                else:
                    problem = await self._execute(client, watch, cell, index, remaining < self.limits.cell_timeout)
                if problem is None:
                    replay.append((index, cell))
                    continue
                if CANCEL.is_set():
                    raise Cancelled("grading was stopped")
                kind, message = problem
                grade_id = cells.grade_id(cell)
                label = f"cell {index}" + (f" ({grade_id})" if grade_id else "")
                self.result.problems.append((kind, f"{label}: {message}"))
                cell.outputs = list(cell.get("outputs", [])) + [_error_output(_ERROR_NAMES[kind], message)]
                if kind == "wall-time":
                    self._mark_not_run(order[position:], self._wall_time_reason())
                    return len(order)
                return position  # a new kernel goes on from the next cell
            return position
        finally:
            watch.stop()
            await self._shutdown(client, km)

    async def _judge(self, client, watch, cell, index, remaining):
        """Judge one test cell outside the kernel (:mod:`.judge`): its probes run in the kernel, its verdict
        becomes the cell's only output. None when the kernel is still fine, else (kind, message)."""
        from .judge import Student, seed_for, verdict

        grade_id = cells.grade_id(cell)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + min(self.limits.cell_timeout, remaining)
        self._probe_broken = None  # after a probe times out or kills the kernel, no further probe is sent
        t0 = time.monotonic()

        def request(req):
            return asyncio.run_coroutine_threadsafe(self._probe(client, watch, index, req, deadline), loop).result()

        result = await loop.run_in_executor(
            None, verdict, self.judges[grade_id], Student(request, self.workdir), seed_for(self.seed, grade_id))
        passed, message, kind = result
        self.result.cell_seconds.append((index, "test", time.monotonic() - t0))
        if passed and result.fraction < 1:  # partial credit: nbgrader reads a test cell's result as its points
            points = cells.points(cell) * result.fraction
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{grade_id}: {message}\n"),
                            nbformat.v4.new_output("execute_result", data={"text/plain": f"{points:.4g}"},
                                                   metadata={VERDICT: True}, execution_count=None)]
        elif passed:
            text = f"{grade_id}: passed" + (f" ({message})" if message else "")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
        else:
            cell.outputs = [_error_output("TestFailed", message)]
        if kind == "judge-error":
            self.result.problems.append(("judge-error", f"cell {index} ({grade_id}): {message}"))
        if kind in ("timeout", "crash"):
            tripped = watch.tripped
            if tripped:
                cell.outputs = [_error_output(_ERROR_NAMES[tripped[0]], tripped[1])]
                return tripped
            if kind == "timeout" and deadline - time.monotonic() <= 0 and remaining < self.limits.cell_timeout:
                return ("wall-time", f"the notebook passed its {self.limits.notebook_timeout:.0f} s wall-time limit in this cell")
            if kind == "timeout":
                message = (f"your code ran longer than the {self.limits.cell_timeout:.0f} s limit per cell during this "
                           "test and was stopped")
                cell.outputs = [_error_output(_ERROR_NAMES["timeout"], message)]
            return (kind, message)
        return None

    async def _probe(self, client, watch, index, request, deadline):
        """One probe in the kernel; the answer's text, or None. Raises ProbeTimeout or KernelLost."""
        from .judge import KernelLost, ProbeTimeout, answer_of, probe_code

        if CANCEL.is_set():
            raise KernelLost("grading was stopped")
        if self._probe_broken:
            raise self._probe_broken
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeTimeout(f"{self.limits.cell_timeout:.0f} s per test")
        client.timeout = max(1, int(remaining))
        code, request_file = probe_code(request, self.workdir)
        probe_cell = nbformat.v4.new_code_cell(code)
        original = self.nb.cells[index]
        try:
            await client.async_execute_cell(probe_cell, index)
        except CellTimeoutError:
            self._probe_broken = ProbeTimeout(f"{self.limits.cell_timeout:.0f} s per test")
            raise self._probe_broken from None
        except Exception as error:  # DeadKernelError, broken channels
            tripped = watch.tripped
            self._probe_broken = KernelLost(tripped[1] if tripped else type(error).__name__)
            raise self._probe_broken from None
        finally:
            self.nb.cells[index] = original
            if request_file:
                try:
                    os.remove(request_file)
                except OSError:
                    pass  # the kernel read and removed it
        return answer_of(probe_cell.get("outputs"))

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
            problem = watch.tripped or ("crash", "the kernel died while running this cell")
        except Exception as error:  # the kernel stopped answering (its channels broke): the kernel's end
            problem = watch.tripped or ("crash", f"the kernel stopped answering while running this cell ({type(error).__name__})")
        finally:
            cell.source = original
            if cell_role(cell) == "test":  # only a judge gives partial credit: drop any output posing as one
                cell.outputs = [o for o in cell.get("outputs", []) if not o.get("metadata", {}).get(VERDICT)]
        if problem is None and watch.tripped:  # killed right as the cell finished
            problem = watch.tripped
        self.result.cell_seconds.append((index, cell_role(cell), time.monotonic() - t0))
        return problem
