"""Run a student's kernel inside bubblewrap: no network, and nothing readable but the system,
Python, the course package, the data, and the submission's own working copy.

``Sandbox(workdir, readonly=[...], writable=[...]).wrap(argv)`` prefixes ``argv`` with a
``bwrap`` command line. Paths are mounted at the same absolute paths, so the kernel sees its
working directory where the grader put it. Without bubblewrap, ``bwrap_path()`` is None and the
caller must say loudly that grading runs unsandboxed.
"""
import os
import shutil
import sys
import sysconfig
from pathlib import Path

# System locations a Python kernel needs. Everything else (the course directory, $HOME, other
# students' copies, /work, /srv, /opt, ...) simply does not exist inside the sandbox.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
SYSTEM_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
    "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/fonts", "/etc/alternatives", "/etc/mime.types",
)


def bwrap_path():
    """The bubblewrap executable, or None when it is not installed."""
    return shutil.which("bwrap")


def gpu_devices():
    """The NVIDIA device files of this machine (none without a GPU)."""
    import glob

    return sorted(glob.glob("/dev/nvidia*"))


def python_dirs():
    """Directories the running Python (venv and base installation) loads code from."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path)
    # Not sys.path: an editable install puts the course root on it, and the course root
    # (source/, gradebook.db, other students) is exactly what must stay hidden.
    real = sys.executable
    dirs.add(str(Path(os.path.realpath(real)).parent.parent))
    return sorted(d for d in dirs if d and os.path.isdir(d))


class Sandbox:
    """A bubblewrap jail around one kernel.

    workdir: the submission's private working copy (read-write, the kernel's cwd).
    readonly: extra paths to expose read-only (the course package, data and caches).
    writable: extra paths to expose read-write (the kernel's connection/IPC directory).
    tmp_bytes: size of the in-memory ``/tmp`` (the resource watch counts what it holds as memory).
    """

    def __init__(self, workdir, readonly=(), writable=(), bwrap=None, tmp_bytes=256 * 2**20, gpu=False):
        self.bwrap = bwrap or bwrap_path()
        if self.bwrap is None:
            raise RuntimeError("bubblewrap (bwrap) is not installed: cannot sandbox student code")
        self.workdir = os.path.abspath(workdir)
        self.readonly = [os.path.abspath(p) for p in readonly if p and os.path.exists(p)]
        self.writable = [os.path.abspath(p) for p in writable]
        self.tmp_bytes = int(tmp_bytes)
        self.gpu = gpu  # expose the NVIDIA devices (a notebook the instructor marked as needing a GPU)

    def _mount_system(self):
        args = []
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in SYSTEM_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        return args

    def wrap(self, argv):
        args = [
            self.bwrap,
            "--die-with-parent", "--new-session",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL",
            "--hostname", "sandbox",
            "--dev", "/dev", "--proc", "/proc", "--size", str(self.tmp_bytes), "--tmpfs", "/tmp",
            "--dir", "/tmp/home", "--setenv", "HOME", "/tmp/home",
            # the grader's PID means nothing inside the new PID namespace (ipykernel would exit)
            "--unsetenv", "JPY_PARENT_PID",
        ]
        args += self._mount_system()
        for device in gpu_devices() if self.gpu else []:
            args += ["--dev-bind", device, device]
        # Parents before children, so a later mount is not hidden by an earlier one.
        mounts = [(p, "--ro-bind") for p in python_dirs() + self.readonly]
        mounts += [(p, "--bind") for p in self.writable + [self.workdir]]
        for path, how in sorted(mounts, key=lambda m: (m[0].count(os.sep), m[0])):
            args += [how, path, path]
        args += ["--chdir", self.workdir, "--"]
        return args + list(argv)


def sandbox_readonly_paths():
    """What a kernel may read besides Python itself: the course package, the data and the data cache."""
    import eep590_utils
    from eep590_utils import data

    paths = [os.path.dirname(os.path.abspath(eep590_utils.__file__)), str(data.cache_dir())]
    paths += [str(p) for p in data.data_dirs() if Path(p).resolve() != Path.cwd().resolve()]
    # both the path as given (a symlink, say ../shared) and where it really is
    found = {os.path.abspath(p) for p in paths if os.path.exists(p)} | {os.path.realpath(p) for p in paths if os.path.exists(p)}
    return sorted(found)


def kernel_data_env():
    """Environment the kernel needs to find the data the grader can see."""
    from eep590_utils import data

    env = {"EEP590_CACHE": str(data.cache_dir())}
    if os.environ.get("EEP590_DATA"):
        env["EEP590_DATA"] = os.path.abspath(os.environ["EEP590_DATA"])
    else:
        found = [p for p in data.data_dirs() if Path(p).resolve() != Path(data.cache_dir()).resolve()]
        if found:  # e.g. the grader's ./data: the kernel runs elsewhere
            env["EEP590_DATA"] = str(Path(found[0]).resolve())
    return env


def kill_all(procs, timeout):
    """Kill every process of ``procs`` (psutil processes) and wait (at most ``timeout`` s) until they are gone."""
    import psutil

    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)


def kill_tree(pid, timeout=5):
    """Kill the process ``pid`` and every descendant at once (children first is pointless)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return
    kill_all(procs, timeout)
