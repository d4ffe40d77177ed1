"""Warm kernels: one sandboxed process imports the course's modules once and forks a fresh kernel for
every notebook, so a notebook's cost is the student's code and the tests, not Python's start and
``import torch``.

The zygote runs inside bubblewrap like any kernel (no network, nothing of the course directory, the
same read-only system, Python, package and data), as an unprivileged user of its own user namespace,
with its pool folder (the notebooks' working copies and socket folders) writable. It imports numpy,
torch, matplotlib, IPython's kernel and ``eep590_utils``, makes itself non-dumpable, and then only forks.
Each fork becomes one kernel, isolated from the zygote and from every other kernel before any student
code runs:

- new user, mount, PID, network and IPC namespaces (nested in the zygote's);
- a fresh tmpfs over the pool folder with only this notebook's two folders bound back, a fresh size-capped
  ``/tmp`` and a fresh ``/dev/shm``: nothing another notebook wrote or writes is reachable; the mounts it
  inherits are locked (a nested namespace cannot unmount them to look underneath);
- all capabilities dropped, ``no_new_privs``, non-dumpable (``/proc/<pid>/root`` of the zygote or of
  another kernel is closed to it), stdin/stdout/stderr on ``/dev/null`` and every other inherited
  descriptor closed (the zygote's control pipe is out of reach), file-size limit = the disk limit;
- fresh random seeds (``random``, NumPy, torch), as a new process would have.

Each kernel is used for one notebook session and killed after it, exactly like a cold one: forking is
the only thing shared, and it shares nothing a notebook can change (a module patched or a value set in
one kernel lives in that kernel's copy-on-write memory only). ``tests/grading/test_zygote.py`` tries
each channel. Notebooks that need a GPU, or a grader without bubblewrap, use cold kernels.

The grader side: :class:`Zygote` (start, :meth:`Zygote.spawn`, close) and :class:`ZygoteKernelManager`,
a jupyter_client kernel manager whose "launch" asks the zygote for a kernel.
"""
from __future__ import annotations

import ctypes
import functools
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from .sandbox import kill_tree

PRELOAD = ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline", "tqdm.auto",
           "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "eep590_utils", "eep590_utils.checks",
           "eep590_utils.gradient_check", "eep590_utils.vis", "eep590_utils.training", "eep590_utils.data",
           "eep590_utils.grading.probe")
SANDBOX_UID = 1000  # the zygote's (and its kernels') user inside the sandbox: not root, so kernels may map it
READY = "eep590-zygote-ready"
RETIRE_AFTER = 3  # kernels in a row a zygote failed to give: it is retired (jobs.warm_zygote starts another)
KERNEL_NAME = "eep590-kernel"  # a forked kernel's process name (its command line is the zygote's)

# ---------------------------------------------------------------------------------------------------------
# inside the sandbox: the zygote and what each forked kernel does before it becomes a kernel

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWIPC = 0x40000000, 0x08000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_NAME, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 15, 4, 38, 24


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc, source, target, fstype, flags, data=None):
    def enc(text):
        return text.encode() if isinstance(text, str) else text

    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _drop_capabilities(libc):
    """Empty bounding, effective, permitted and inheritable sets; no new privileges from exec."""
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} sets, all zero
    _check(libc.capset(header, data), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _isolate(request):
    """In the forked child: new namespaces and mounts (see the module docstring). Returns after forking
    once more: the caller is PID 1 of the new PID namespace, the kernel-to-be."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    pool = request["pool"]
    keep = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in request["bind"]}
    # a fresh /tmp (which hides a pool living under /tmp), a tmpfs over the pool wherever else it lives,
    # then only this kernel's folders bound back at the same paths
    _mount(libc, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(request['tmp_bytes'])},mode=1777")
    if os.path.commonpath([pool, "/tmp"]) != "/tmp":
        _mount(libc, "tmpfs", pool, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    for path, fd in keep.items():
        os.makedirs(path, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    os.makedirs("/tmp/home", exist_ok=True)
    if os.path.isdir("/dev/shm"):
        _mount(libc, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


def _become_kernel(request):
    """PID 1 of the new namespace: drop everything, then run ipykernel with the request's arguments."""
    import random
    import resource

    libc = _libc()
    libc.prctl(PR_SET_NAME, KERNEL_NAME.encode(), 0, 0, 0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if request.get("debug"):
        os.dup2(os.open(os.path.join(request["cwd"], "zygote-kernel-stderr.txt"), os.O_WRONLY | os.O_CREAT, 0o644), 2)
    os.closerange(3, 65536)
    fsize = int(request.get("fsize") or 0)
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    _drop_capabilities(libc)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = ""  # as `python -m ipykernel_launcher` in the working copy has it
    random.seed()
    import numpy
    import torch

    numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    torch.seed()
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = ["ipykernel_launcher", *request["argv"]]
    app = IPKernelApp.instance()
    app.initialize(request["argv"])
    try:  # pyplot was imported before any shell existed: hook the inline backend up now, as a fresh kernel does
        from matplotlib_inline import backend_inline

        backend_inline._enable_matplotlib_integration()
    except Exception:  # noqa: BLE001 (no matplotlib: nothing to hook up)
        pass
    app.start()
    os._exit(0)


def _reap_until(pid):
    """Wait for ``pid``, reaping every other child meanwhile; exit with its status."""
    for fd in (0, 1, 2):
        os.dup2(os.open(os.devnull, os.O_RDWR), fd)
    os.closerange(3, 65536)
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if done == pid:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _spawn_child(request):
    """The forked child (still in the zygote's PID namespace): isolate, then fork PID 1 of the new PID
    namespace (a reaper: the kernel must not be PID 1, which a kill from inside cannot reach), which
    forks the kernel."""
    try:
        _libc().prctl(PR_SET_NAME, f"eep590k{request['id']}".encode()[:15], 0, 0, 0)
        _isolate(request)
        init = os.fork()
        if init == 0:
            kernel = os.fork()
            if kernel == 0:
                try:
                    _become_kernel(request)
                except BaseException:
                    if request.get("debug"):
                        import traceback

                        with open(os.path.join(request["cwd"], "zygote-kernel-error.txt"), "w") as f:
                            traceback.print_exc(file=f)
                finally:
                    os._exit(70)
            _reap_until(kernel)
        _reap_until(init)
    except BaseException as error:  # noqa: BLE001 (report, never return into the zygote's loop)
        try:
            os.write(2, f"eep590 zygote child: {error}\n".encode())
        finally:
            os._exit(71)


def _can_isolate():
    """Whether a forked child can make its own namespaces here (some systems forbid nested user
    namespaces): "ok", or the reason. Without it the grader starts kernels cold."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:  # exactly what a kernel's isolation does, on a scratch folder
            os.makedirs("/tmp/eep590-selftest/work", exist_ok=True)
            _isolate({"pool": "/tmp/eep590-selftest", "bind": ["/tmp/eep590-selftest/work"], "tmp_bytes": 2**20})
            _drop_capabilities(_libc())
            os.write(write, b"ok")
        except BaseException as error:  # noqa: BLE001
            os.write(write, str(error).encode()[:500])
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1000).decode() or "the test child died"
    os.close(read)
    os.waitpid(pid, 0)
    return answer


def serve():
    """The zygote's main loop (``python -m eep590_utils.grading.zygote`` inside the sandbox): preload,
    then one JSON request per line on stdin -> one JSON reply per line on stdout."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a module the course does not have: kernels import it themselves)
            pass
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    threads = len(os.listdir("/proc/self/task"))
    out = os.fdopen(os.dup(1), "w", buffering=1)
    out.write(json.dumps({"ready": READY, "threads": threads, "isolation": _can_isolate()}) + "\n")
    stdin = sys.stdin.buffer
    while True:
        while True:  # reap finished children
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        ready, _, _ = select.select([stdin], [], [], 0.5)
        if not ready:
            continue
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        try:
            pid = os.fork()
        except OSError as error:
            out.write(json.dumps({"id": request["id"], "error": str(error)}) + "\n")
            continue
        if pid == 0:
            _spawn_child(request)
        out.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")


# ---------------------------------------------------------------------------------------------------------
# the grader's side


class ZygoteError(RuntimeError):
    """The zygote could not give a kernel (the grader's problem: the start is retried)."""


def _ns_pids(host_pid):
    """The PIDs of ``host_pid`` from the host's namespace inwards (``NSpid`` of /proc/<pid>/status)."""
    try:
        with open(f"/proc/{host_pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except OSError:
        pass
    return []


class Zygote:
    """One warm, sandboxed process that forks kernels (see the module docstring).

    ``pool``: the folder every notebook's working copy and socket folder must live under;
    ``readonly``: what the sandbox shows besides the system and Python (package, data, caches);
    ``env``: the environment the zygote imports under (threads, matplotlib backend, hash seed).
    """

    def __init__(self, pool: str, readonly: list[str], env: dict[str, str], tmp_bytes: int = 64 * 2**20):
        from .sandbox import Sandbox

        self.pool = os.path.abspath(pool)
        os.makedirs(self.pool, exist_ok=True)
        sandbox = Sandbox(self.pool, readonly=readonly, tmp_bytes=tmp_bytes)
        argv = sandbox.wrap([sys.executable, "-m", "eep590_utils.grading.zygote"])
        # its own user namespace, as an unprivileged user: a root without capabilities cannot map root
        # into the kernels' namespaces; everything but the pool and /tmp read-only (kernels get fresh ones)
        chdir = argv.index("--chdir")
        argv = (argv[:1] + ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
                + argv[1:chdir] + ["--remount-ro", "/"] + argv[chdir:])
        self._lock = threading.Lock()
        self._count = 0
        self._failures = 0  # kernels in a row this zygote failed to give
        self.retired = False
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=None if os.environ.get("EEP590_ZYGOTE_DEBUG") else subprocess.DEVNULL,
                                        env=env, cwd=self.pool, text=True, bufsize=1)
        line = self._read_line(timeout=120)
        if READY not in line:
            self.close()
            raise ZygoteError(f"the zygote did not start ({line.strip() or 'no answer'})")
        ready = json.loads(line)
        self.preload_threads = ready.get("threads")
        if ready.get("isolation") != "ok":
            self.close()
            raise ZygoteError(f"forked kernels cannot be isolated here ({ready.get('isolation')}): kernels start cold")

    def _read_line(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else ""

    def holds(self, path: str) -> bool:
        """Whether ``path`` lies under the pool (where a forked kernel's folders must be)."""
        return os.path.commonpath([os.path.abspath(path), self.pool]) == self.pool

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def usable(self) -> bool:
        """Alive and not retired: new kernels may come from it."""
        return self.alive and not self.retired

    def note_start(self, ok: bool) -> None:
        """Count a kernel this zygote gave (``ok``) or failed to give. After :data:`RETIRE_AFTER` failures in a
        row it is retired: it forks no more, and the kernels it gave run on (it is closed with the others)."""
        with self._lock:
            self._failures = 0 if ok else self._failures + 1
            if self._failures >= RETIRE_AFTER:
                self.retired = True

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, bind: list[str], tmp_bytes: int,
              fsize: int = 0, timeout: float = 30) -> tuple[int, int]:
        """Fork a kernel: ``(host pid of its namespace's parent, host pid of the kernel)``. ``bind``: the
        folders (under the pool) this kernel may see; ``argv``: ipykernel's arguments (``-f conn.json``)."""
        for path in bind:
            if not self.holds(path):
                raise ZygoteError(f"{path} is not under the zygote's pool {self.pool}")
        with self._lock:
            if not self.alive:
                raise ZygoteError("the zygote is not running")
            self._count += 1
            request = {"id": self._count, "argv": argv, "env": env, "cwd": cwd, "pool": self.pool,
                       "bind": [os.path.abspath(p) for p in bind], "tmp_bytes": tmp_bytes, "fsize": fsize,
                       "debug": bool(os.environ.get("EEP590_ZYGOTE_DEBUG"))}
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
            except OSError as error:
                raise ZygoteError(f"the zygote stopped answering ({error})") from None
            reply = json.loads(self._read_line(timeout) or "{}")
        if "pid" not in reply:
            raise ZygoteError(f"the zygote could not fork a kernel ({reply.get('error', 'no answer')})")
        return self._host_pids(reply["pid"], time.monotonic() + timeout)

    def _host_pids(self, zygote_ns_pid, deadline):
        import psutil

        while time.monotonic() < deadline:
            try:
                procs = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.Error:
                raise ZygoteError("the zygote died") from None
            # the forked child keeps the zygote's PID namespace: NSpid = [host pid, pid the zygote saw]
            parent = next((p.pid for p in procs if _ns_pids(p.pid)[1:] == [zygote_ns_pid]), None)
            if parent is not None:  # parent -> PID 1 of the kernel's namespace -> the kernel
                init = next((c.pid for c in _children(parent)), None)
                kernel = next((c.pid for c in _children(init)), None) if init else None
                if kernel is not None:
                    return parent, kernel
            time.sleep(0.01)
        raise ZygoteError("the forked kernel did not appear")

    def close(self) -> None:
        """Kill the zygote (its kernels with it) and remove its pool."""
        import shutil

        if self.process.poll() is None:
            kill_tree(self.process.pid)
        shutil.rmtree(self.pool, ignore_errors=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _children(pid):
    import psutil

    try:
        return psutil.Process(pid).children()
    except psutil.Error:
        return []


class ForkedKernelProcess:
    """What jupyter_client's provisioner needs of a ``Popen`` (poll, wait, kill, signals) for a kernel the
    zygote forked: ``pid`` is its namespace's parent (the tree to watch and kill), signals go to the kernel."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, kernel_pid: int):
        import psutil

        self.pid, self.kernel_pid = pid, kernel_pid
        self.returncode = None
        self._proc = psutil.Process(pid)

    def poll(self):
        import psutil

        if self.returncode is None:
            try:
                if self._proc.status() == psutil.STATUS_ZOMBIE:
                    self.returncode = -9
            except psutil.Error:
                self.returncode = -9
        return self.returncode

    def wait(self, timeout=None):
        import psutil

        try:
            self._proc.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise subprocess.TimeoutExpired("kernel", timeout) from None
        self.returncode = -9 if self.returncode is None else self.returncode
        return self.returncode

    def send_signal(self, signum):
        try:
            os.kill(self.kernel_pid, signum)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.send_signal(15)

    def kill(self):
        kill_tree(self.pid)


@functools.lru_cache(maxsize=None)
def make_kernel_manager_class():
    """``ZygoteKernelManager``: an ``AsyncKernelManager`` that launches by asking a :class:`Zygote`."""
    from jupyter_client.manager import AsyncKernelManager

    class ZygoteKernelManager(AsyncKernelManager):
        zygote: Zygote | None = None
        spawn_options: dict[str, Any] = {}

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            import asyncio

            argv = kernel_cmd[kernel_cmd.index("-f"):] if "-f" in kernel_cmd else kernel_cmd[3:]
            env = dict(kw.get("env") or {})
            loop = asyncio.get_running_loop()
            pid, kernel_pid = await loop.run_in_executor(
                None, lambda: self.zygote.spawn(argv, env, str(kw.get("cwd")), **self.spawn_options))
            provisioner = self.provisioner
            provisioner.process = ForkedKernelProcess(pid, kernel_pid)
            provisioner.pid, provisioner.pgid = pid, None
            provisioner.cwd = kw.get("cwd")
            self._reconcile_connection_info(provisioner.connection_info)

    return ZygoteKernelManager


if __name__ == "__main__":
    serve()
