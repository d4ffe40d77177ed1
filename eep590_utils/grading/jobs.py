"""One notebook to grade, as a self-contained job: what phase 2 of autograde runs, on this machine's
worker threads or on a cluster's workers (:mod:`.cluster`).

A :class:`NotebookJob` carries everything the run needs as data — the sanitized notebook, the
student's other files, the judges' source, the limits and the seed — and nothing of the course
directory, so a worker needs only the course package and the data. :func:`run_job` runs it the same
way everywhere: a private working copy, the kernel in bubblewrap under the limits, the test cells judged
outside the kernel.
"""
import atexit
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .execute import CANCEL, Cancelled, GraderFault, NotebookRunner
from .files import copy_tree_safely
from .judge import judges_path, load_judges_source
from .sandbox import bwrap_path, kernel_data_env, sandbox_readonly_paths
from .settings import Limits
from .zygote import Zygote, ZygoteError

log = logging.getLogger("eep590.autograde")
GRADER_RETRIES = 2  # a notebook whose run failed for the grader's reasons is run again this many times
GPU_METADATA = "eep590"  # notebook metadata {"eep590": {"gpu": true}}: grade it where a GPU is


@dataclass
class NotebookJob:
    student: str
    notebook: str
    notebook_json: str  # the sanitized notebook (nbformat JSON)
    files: dict = field(default_factory=dict)  # relative path -> bytes: the student's other files
    judges_source: str = ""  # text of source/<hw>/judges/<notebook>.py
    limits: Limits = field(default_factory=Limits)
    sandboxed: bool = True
    seed: int = 0
    threads: int = 1
    needs_gpu: bool = False

    @property
    def key(self):
        return (self.student, self.notebook)


def needs_gpu(nb):
    """Whether the instructor marked the notebook as needing a GPU to grade (``metadata.eep590.gpu``)."""
    meta = nb.get("metadata", {}).get(GPU_METADATA, {})
    return bool(isinstance(meta, dict) and meta.get("gpu"))


def make_job(course, assignment, student, notebook, limits, sandboxed, seed, threads=1, judges_source=None):
    """The job for ``autograded/<student>/<assignment>/<notebook>.ipynb`` (staged and sanitized);
    ``judges_source`` is the judges file's text when the caller has read it already."""
    path = course.path("autograded", student, assignment) / f"{notebook}.ipynb"
    text = path.read_text()
    files = {}
    for file in sorted(path.parent.rglob("*")):
        if file.is_file() and not file.is_symlink() and file.suffix != ".ipynb":
            files[str(file.relative_to(path.parent))] = file.read_bytes()
    if judges_source is None:
        judges = judges_path(course, assignment, notebook)
        judges_source = judges.read_text() if judges.is_file() else ""
    return NotebookJob(student=student, notebook=notebook, notebook_json=text, files=files,
                       judges_source=judges_source, limits=limits,
                       sandboxed=sandboxed, seed=seed, threads=threads,
                       needs_gpu=needs_gpu(nbformat.reads(text, as_version=4)))


_ZYGOTES = {}  # (threads, readonly paths, environment) -> Zygote: one per kind of kernel, shared by the workers
_ZYGOTES_LOCK = threading.Lock()
_NO_ZYGOTE = {}  # kind of kernel -> why no zygote could start (not tried again until close_zygotes)
_RETIRED = {}  # kind of kernel -> zygotes retired for failing to give kernels (their kernels run on; closed at the end)
MAX_RETIRED = 2  # zygotes of one kind retired in a run before its kernels start cold for the rest of the run


def warm_zygote(threads, readonly, env):
    """A running :class:`Zygote` for kernels of this kind (started, restarted after it died, or replaced
    after it was retired for failing to give kernels), or None when none can start (then kernels start
    cold, as before)."""
    from .execute import kernel_env, matplotlib_cache_copy

    key = (threads, tuple(readonly), tuple(sorted(env.items())))
    with _ZYGOTES_LOCK:
        if key in _NO_ZYGOTE:
            return None
        zygote = _ZYGOTES.pop(key, None)
        if zygote is not None and zygote.usable:
            _ZYGOTES[key] = zygote
            return zygote
        if zygote is not None and zygote.alive:  # retired: left to finish the kernels it gave
            _RETIRED.setdefault(key, []).append(zygote)
            if len(_RETIRED[key]) >= MAX_RETIRED:
                _NO_ZYGOTE[key] = f"{len(_RETIRED[key])} zygotes failed to give kernels"
                log.warning("warm kernels unavailable, starting kernels cold: %s", _NO_ZYGOTE[key])
                return None
        elif zygote is not None:
            zygote.close()
        pool = tempfile.mkdtemp(prefix=f"eep590-pool-{os.getpid()}-")
        zygote_env = dict(kernel_env(env, threads), MPLCONFIGDIR=matplotlib_cache_copy(os.path.join(pool, "mpl")))
        try:
            _ZYGOTES[key] = Zygote(pool, list(readonly), zygote_env)
        except (ZygoteError, OSError) as error:
            _NO_ZYGOTE[key] = str(error)
            shutil.rmtree(pool, ignore_errors=True)
            log.warning("warm kernels unavailable, starting kernels cold: %s", error)
            return None
        return _ZYGOTES[key]


@atexit.register
def close_zygotes():
    """Stop every zygote of this process, retired ones included (autograde calls it at the end of a run;
    atexit on a worker)."""
    with _ZYGOTES_LOCK:
        zygotes = list(_ZYGOTES.values()) + [z for retired in _RETIRED.values() for z in retired]
        _ZYGOTES.clear()
        _NO_ZYGOTE.clear()
        _RETIRED.clear()
    for zygote in zygotes:
        zygote.close()


def run_job(job):
    """Run one job here; return its ExecutionResult (raises GraderFault when no kernel starts)."""
    nb = nbformat.reads(job.notebook_json, as_version=4)
    judges = load_judges_source(job.judges_source, f"judges/{job.notebook}.py")
    readonly, env = sandbox_readonly_paths(), kernel_data_env()
    zygote = None
    if job.limits.warm_kernels and job.sandboxed and not job.needs_gpu and bwrap_path():
        zygote = warm_zygote(job.threads, readonly, env)
    with tempfile.TemporaryDirectory(prefix=f"eep590-work-{os.getpid()}-", dir=zygote.pool if zygote else None) as tmp:
        incoming = Path(tmp) / "incoming"
        for rel, data in job.files.items():
            target = incoming / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        workdir = Path(tmp) / "submission"
        copy_tree_safely(incoming, workdir) if incoming.exists() else workdir.mkdir()
        runner = NotebookRunner(nb, workdir, limits=job.limits, sandbox_readonly=readonly,
                                use_sandbox=job.sandboxed, env=env, threads=job.threads,
                                judges=judges, seed=job.seed, gpu=job.needs_gpu, zygote=zygote)
        return runner.run()


def run_with_retries(job):
    """``(result, fault)``: run a job, again (up to GRADER_RETRIES times) when it fails for the grader's
    reasons (no kernel started); fault says why when it never ran."""
    fault = None
    for _ in range(1 + GRADER_RETRIES):
        try:
            return run_job(job), None
        except Cancelled:
            raise
        except Exception as error:  # GraderFault: no kernel started; or the grader's own error
            if CANCEL.is_set():
                raise Cancelled("grading was stopped") from None
            fault = str(error) if isinstance(error, GraderFault) else f"{type(error).__name__}: {error}"
    return None, fault
