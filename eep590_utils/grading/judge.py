"""Judges: the grade of each autograded question is decided here, outside the student's kernel.

A judge is an instructor's function, kept in ``source/<hw>/judges/<notebook>.py`` (never released,
never copied next to a submission, never readable from a kernel), registered for one test cell's
``grade_id``::

    from eep590_utils.grading.judge import judge

    @judge("cross_corr_2d_matches_conv2d")
    def _(student, gen):
        X, K = torch.randn(5, 7, generator=gen), torch.randn(2, 3, generator=gen)
        Y = student.cross_corr_2d(X, K)           # runs in the student's kernel, comes back as data
        expected = F.conv2d(X[None, None], K[None, None])[0, 0]
        assert_close(Y, expected, "cross_corr_2d(X, K)")   # runs here

At grading time the test cell's code is not run in the kernel: the judge runs in the grader, and each
``student.<name>(...)`` is a *probe*, one request to the kernel (:mod:`.probe`) on inputs the judge
chose from ``gen``, a generator the grader seeds afresh for every run. What comes back is plain data
(:mod:`.wire`), validated; what cannot be data stays in the kernel as a :class:`Remote` the judge can
pass back. The verdict (full marks, or 0 with the judge's message) becomes the cell's only output, so
nothing the student's code does to IPython, NumPy or the checks can change it, and nothing secret
(reference values, tolerances, judge code) ever enters the kernel.
"""
import functools
import json
import threading
import types
import zlib
from pathlib import Path

from .wire import MIME, WireError, encode, loads

JUDGES_FOLDER = "judges"  # source/<hw>/judges/<notebook>.py


class Fail(AssertionError):
    """The student's answer is wrong; the message says how (it reaches the student)."""


class ProbeError(RuntimeError):
    """The kernel gave no usable answer (no answer, malformed data, an answer too large)."""


class ProbeTimeout(ProbeError):
    """A probe ran past the per-cell timeout (the kernel is restarted after the judge)."""


class KernelLost(ProbeError):
    """The kernel died during a probe (crash or a resource limit)."""


class StudentError(Exception):
    """The student's code raised ``ename: evalue`` during a probe."""

    def __init__(self, ename, evalue):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


class Remote:
    """An object that stays in the student's kernel; pass it back to a probe, or ``student.value(it)``."""

    def __init__(self, index, type_name):
        self.index, self.type_name = index, type_name

    def __repr__(self):
        return f"<{self.type_name} in the student's kernel>"


def _wire(value):
    """``value`` for a request: plain data, with Remote handles where the judge passes them back."""
    if isinstance(value, Remote):
        return {"__remote__": value.index, "type": value.type_name}
    if isinstance(value, (list, tuple)):
        items = [_wire(v) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": {k: _wire(v) for k, v in value.items()}}
    return encode(value)


class Student:
    """The judge's view of one student's kernel: ``student.f(x)`` calls the student's ``f`` there."""

    def __init__(self, request, workdir=None):
        self._request = request  # request(dict) -> answer text (the ``display_data`` of one probe)
        self._workdir = workdir  # the notebook's private working copy (files it wrote, e.g. a checkpoint)

    def read_file(self, name, max_bytes=256 * 2**20):
        """The bytes of a regular file the notebook left in its folder (read here, in the grader, never
        through a link), e.g. a checkpoint for ``torch.load(io.BytesIO(...), weights_only=True)``."""
        import os
        import stat

        if self._workdir is None:
            raise ProbeError("this grading run has no working folder to read files from")
        rel = Path(str(name))
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{name!r} is not a file name inside the notebook's folder")
        try:
            fd = os.open(Path(self._workdir) / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise Fail(f"{name} was not found next to the notebook (run the cell that saves it)") from None
        except OSError:
            raise Fail(f"{name} next to the notebook is not a regular file") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Fail(f"{name} next to the notebook is not a regular file")
            if info.st_size > max_bytes:
                raise Fail(f"{name} is {info.st_size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB allowed")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read(max_bytes + 1)[:max_bytes]
        finally:
            os.close(fd)

    def _ask(self, request):
        text = self._request(request)
        if text is None:
            raise ProbeError("the notebook gave no answer (did a cell of yours clear or hide outputs?)")
        try:
            answer = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not ({"ok", "error"} & set(answer)):
            raise ProbeError("the notebook's answer was not readable data")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise StudentError(str(error.get("ename", "Error"))[:100], str(error.get("evalue", ""))[:2000])
        try:
            return loads(json.dumps(answer["ok"]), remote=Remote)
        except WireError as error:
            raise ProbeError(f"the notebook answered with {error}") from None

    def call(self, target, *args, **kwargs):
        """Call ``target`` (a name in the notebook, ``"obj.method"``, or a Remote) in the kernel."""
        target = _wire(target) if isinstance(target, Remote) else str(target)
        return self._ask({"op": "call", "target": target, "args": _wire(list(args)), "kwargs": _wire(dict(kwargs))})

    def call_many(self, target, arg_lists, pick=None):
        """Call ``target`` once per argument list, all in ONE probe (a numerical gradient's hundreds of
        evaluations cost one round trip); the results in order, or ``result[pick]`` of each. The first call
        that raises makes the whole request raise :class:`StudentError`."""
        target = _wire(target) if isinstance(target, Remote) else str(target)
        calls = [{"args": _wire(list(args)), "kwargs": _wire({})} for args in arg_lists]
        return self._ask({"op": "many", "target": target, "calls": calls, "pick": pick})

    def value(self, target):
        """The value of a notebook variable (``"name"`` or ``"name.attr"``) or of a Remote, as data."""
        target = _wire(target) if isinstance(target, Remote) else str(target)
        return self._ask({"op": "get", "target": target})

    def put(self, value):
        """Keep ``value`` in the kernel (e.g. a dict the student's function updates); returns a Remote."""
        return self._ask({"op": "put", "value": _wire(value)})

    def eval(self, code):
        """Evaluate an expression of the judge's own in the notebook's namespace (e.g. ``"Net()"``)."""
        return self._ask({"op": "eval", "code": str(code)})

    def has(self, name):
        """Whether the notebook defines ``name``."""
        return bool(self.eval(f"{str(name)!r} in globals()"))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)


LARGE_REQUEST = 32 * 1024  # characters of JSON past which a request travels in a file, not in the cell's code


def probe_code(request, workdir=None):
    """``(code, file)``: the code one probe runs in the kernel, and the file that carries a large request
    (written here, in the kernel's working copy, never through a link; None for a small one)."""
    text = json.dumps(request)
    if workdir is None or len(text) <= LARGE_REQUEST:
        return f"import eep590_utils.grading.probe as __eep590_probe\n__eep590_probe.serve({text!r})", None
    import os
    import secrets

    path = os.path.join(workdir, f".eep590-probe-{secrets.token_hex(8)}.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return f"import eep590_utils.grading.probe as __eep590_probe\n__eep590_probe.serve_file({path!r})", path


def numerical_gradient(f_many, x, dout, h=1e-5, output=None):
    """Centred differences of ``sum(f(x) * dout)`` in every entry of ``x``, as
    :func:`eep590_utils.gradient_check.eval_numerical_gradient_array` computes them, with all 2 * x.size
    evaluations made at once: ``f_many(list of inputs) -> list of outputs`` (``student.call_many``: one probe,
    not two per entry). ``output`` checks and converts each output (default ``numpy.asarray``); an output
    whose shape is not ``dout``'s fails the test, naming both shapes."""
    import numpy as np

    x, dout = np.array(x, dtype=np.float64), np.asarray(dout)
    inputs = []
    for ix in np.ndindex(x.shape):
        for step in (h, -h):
            moved = x.copy()
            moved[ix] += step
            inputs.append(moved)
    outputs = [(output or np.asarray)(out) for out in f_many(inputs)]
    for out in outputs:
        if np.shape(out) != dout.shape:
            raise Fail(f"the forward output has shape {np.shape(out)} but dout has shape {dout.shape}")
    grad = np.zeros_like(x)
    for k, ix in enumerate(np.ndindex(x.shape)):
        grad[ix] = np.sum((outputs[2 * k] - outputs[2 * k + 1]) * dout) / (2 * h)
    return grad


def answer_of(outputs):
    """The probe's answer (text) among a probe execution's outputs: the last one of its MIME type."""
    found = None
    for output in outputs or []:
        data = output.get("data") if isinstance(output, dict) else None
        if isinstance(data, dict) and isinstance(data.get(MIME), str):
            found = data[MIME]
    return found


# ------------------------------------------------------------------------------------------------
# Registry and loading

_REGISTERING = None  # the dict the module being loaded registers into
_LOADING = threading.Lock()


def judge(grade_id):
    """Register the decorated ``fn(student, gen)`` as the judge of test cell ``grade_id``."""
    def register(fn):
        if _REGISTERING is None:
            raise RuntimeError("judges are registered while load_judges() reads their file")
        if grade_id in _REGISTERING:
            raise ValueError(f"two judges for {grade_id!r}")
        _REGISTERING[grade_id] = fn
        return fn
    return register


def judges_path(course, assignment, notebook):
    return course.path("source", assignment=assignment) / JUDGES_FOLDER / f"{notebook}.py"


def load_judges(path):
    """``{grade_id: fn}`` from a judges file (``{}`` when there is none)."""
    path = Path(path)
    return load_judges_source(path.read_text(), str(path)) if path.is_file() else {}


@functools.lru_cache(maxsize=64)
def load_judges_source(source, filename="<judges>"):
    """``{grade_id: fn}`` from the text of a judges file (how a worker machine gets them); compiled once per
    text and process, not once per notebook (judges keep no state between calls)."""
    global _REGISTERING
    if not source:
        return {}
    found = {}
    module = types.ModuleType(f"eep590_judges_{zlib.crc32(filename.encode())}")
    module.__file__ = filename
    with _LOADING:
        previous, _REGISTERING = _REGISTERING, found
        try:
            exec(compile(source, filename, "exec"), module.__dict__)  # the instructor's judges, never a student's
        finally:
            _REGISTERING = previous
    return found


def seed_for(run_seed, grade_id):
    """The seed of one judge in one run: fresh per run, different per question."""
    return (int(run_seed) * 1_000_003 + zlib.crc32(grade_id.encode())) % 2**63


class Score:
    """What a judge returns for partial credit: ``fraction`` of the cell's points (0 to 1), and a message
    for the student (``return Score(acc / 0.75, f"test accuracy {acc:.1%}")``). Returning nothing means full
    marks; raising (a failed check) means none."""

    def __init__(self, fraction, message=""):
        self.fraction, self.message = float(fraction), str(message)


class Verdict(tuple):
    """``(passed, message, kind)`` plus ``fraction`` (1.0 for full marks, 0.0 for none, or partial credit)."""

    def __new__(cls, passed, message, kind, fraction=None):
        self = super().__new__(cls, (passed, message, kind))
        self.fraction = (1.0 if passed else 0.0) if fraction is None else fraction
        return self


def verdict(fn, student, seed):
    """Run one judge; a :class:`Verdict` ``(passed, message, kind)`` where kind is '' (a plain verdict),
    'timeout' or 'crash' (the kernel must be restarted), or 'judge-error' (the judge itself broke)."""
    import math

    import torch

    gen = torch.Generator().manual_seed(seed)
    try:
        result = fn(student, gen)
    except ProbeTimeout as error:
        return Verdict(False, f"your code ran past the time limit during this test ({error})", "timeout")
    except KernelLost as error:
        return Verdict(False, f"the kernel died during this test ({error})", "crash")
    except StudentError as error:
        return Verdict(False, f"your code raised {error.ename}: {error.evalue}", "")
    except ProbeError as error:
        return Verdict(False, str(error), "")
    except AssertionError as error:  # Fail, or a plain assert in the judge
        return Verdict(False, str(error) or "the answer is wrong", "")
    except Exception as error:  # the judge broke on what the student returned (or a bug in the judge)
        return Verdict(False, (f"the test could not check your answer ({type(error).__name__}: {str(error)[:300]}); "
                               "check the types and shapes your code returns"), "judge-error")
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        result = Score(result)
    if isinstance(result, Score):
        fraction = min(1.0, max(0.0, result.fraction)) if math.isfinite(result.fraction) else 0.0
        if fraction <= 0:
            return Verdict(False, result.message or "no credit", "")
        return Verdict(True, result.message, "", fraction)
    return Verdict(True, "", "")


def _nbgrader_preprocessor_base():
    from nbgrader.preprocessors.base import NbGraderPreprocessor

    return NbGraderPreprocessor


class JudgesRequired(_nbgrader_preprocessor_base()):
    """Installed first in plain ``nbgrader autograde``'s execute step by ``nbgrader_config.py``: the kit's
    hidden tests live in judges, so plain nbgrader would give them full marks. It stops instead, saying
    what to run (``eep590 autograde`` never runs this step: it executes and judges notebooks itself)."""

    def preprocess(self, nb, resources):
        raise RuntimeError("this course's test cells are decided by judges outside the student's kernel: grade "
                           "with `eep590 autograde <assignment>` (plain `nbgrader autograde` would give every "
                           "hidden test full marks)")
