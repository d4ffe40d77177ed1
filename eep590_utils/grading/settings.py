"""Every grading limit once: its default, its environment variable and its help.

``nbgrader_config.py`` reads the environment through :func:`from_env`, :class:`GradingLimits` (the
course's configurable settings) and :class:`Limits` (what one notebook's run obeys) take their
defaults from :data:`SETTINGS`, and the command line's help text quotes them, so a default changes
in one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from traitlets import Integer, Unicode
from traitlets.config import Configurable

MiB = 2**20


@dataclass(frozen=True)
class Setting:
    default: int
    env: str  # environment variable nbgrader_config.py reads it from ("" when none)
    help: str


SETTINGS: dict[str, Setting] = {
    "cell_timeout": Setting(120, "EEP590_CELL_TIMEOUT",
                            "seconds one cell may run before it is interrupted and recorded as a timeout"),
    "notebook_timeout": Setting(900, "EEP590_NOTEBOOK_TIMEOUT",
                                "seconds one notebook may run in all, kernel restarts and replays included"),
    "memory_limit_mb": Setting(4096, "EEP590_MEMORY_LIMIT_MB",
                               "MiB of resident memory of one kernel and its children, plus its in-memory /tmp"),
    "disk_limit_mb": Setting(1024, "EEP590_DISK_LIMIT_MB", "MiB one notebook may write into its working copy"),
    "max_processes": Setting(64, "EEP590_MAX_PROCESSES", "processes one kernel may have alive at once"),
    "workers": Setting(0, "EEP590_WORKERS", "notebooks graded at once; 0 means the number of cores"),
    "warm_kernels": Setting(1, "EEP590_WARM_KERNELS", "1: fork each sandboxed kernel from a warm zygote that "
                            "imported the course's modules once (grading/zygote.py); 0: start every kernel cold"),
}


def from_env(name: str) -> int:
    """The setting ``name`` from its environment variable, else its default (for nbgrader_config.py)."""
    setting = SETTINGS[name]
    text = os.environ.get(setting.env, "") if setting.env else ""
    try:
        return int(text) if text.strip() else setting.default
    except ValueError:
        raise ValueError(f"{setting.env}={text!r} is not a whole number ({setting.help})") from None


def help_text(name: str) -> str:
    """The command line's help for ``name``: what it is and where its default comes from."""
    setting = SETTINGS[name]
    return f"{setting.help} (default: nbgrader_config.py, i.e. ${setting.env} or {setting.default})"


def _default(name: str) -> int:
    return SETTINGS[name].default


@dataclass
class Limits:
    """What one notebook's run obeys (:mod:`.execute`)."""

    cell_timeout: float = float(_default("cell_timeout"))  # seconds for one cell
    notebook_timeout: float = float(_default("notebook_timeout"))  # the whole notebook, restarts included
    memory_bytes: int = _default("memory_limit_mb") * MiB  # the kernel and its children, plus its /tmp
    max_restarts: int = 5  # kernel restarts after a timeout, memory kill or crash
    disk_bytes: int = _default("disk_limit_mb") * MiB  # bytes the notebook may write into its working copy
    tmp_bytes: int = 256 * MiB  # size of the sandbox's in-memory /tmp
    max_processes: int = _default("max_processes")  # processes the kernel may have alive at once
    start_timeout: float = 120.0  # seconds a kernel may take to start; never taken from a cell's budget
    start_attempts: int = 3  # a kernel that fails to start is retried; then the notebook is left ungraded
    warm_kernels: bool = bool(_default("warm_kernels"))  # fork kernels from a warm zygote (sandboxed runs only)

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "memory_bytes", "disk_bytes", "tmp_bytes",
                     "max_processes", "start_timeout", "start_attempts"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"limit {name} must be a positive number, got {value!r}")


class GradingLimits(Configurable):
    """Limits of ``eep590 autograde``, set in ``nbgrader_config.py`` (the per-cell timeout is ``Execute.timeout``)."""

    notebook_timeout = Integer(_default("notebook_timeout"), help=SETTINGS["notebook_timeout"].help).tag(config=True)
    memory_limit_mb = Integer(_default("memory_limit_mb"), help=SETTINGS["memory_limit_mb"].help).tag(config=True)
    disk_limit_mb = Integer(_default("disk_limit_mb"), help=SETTINGS["disk_limit_mb"].help).tag(config=True)
    max_processes = Integer(_default("max_processes"), help=SETTINGS["max_processes"].help).tag(config=True)
    workers = Integer(_default("workers"), help=SETTINGS["workers"].help).tag(config=True)
    warm_kernels = Integer(_default("warm_kernels"), help=SETTINGS["warm_kernels"].help).tag(config=True)
    ray_address = Unicode("", help="Run the execute phase on this Ray cluster ('auto', 'host:port', "
                          "'ray://host:10001' or 'local'); '' means this machine's threads").tag(config=True)


def configured_limits(course: Any, cell_timeout: float | None = None, notebook_timeout: float | None = None,
                      memory_limit_mb: int | None = None) -> Limits:
    """:class:`Limits` from the course configuration, with any argument given (not None) overriding it;
    a limit that is not a positive number is a ``ValueError`` naming it (``--cell-timeout 0`` included)."""
    conf = GradingLimits(config=course.config)

    def pick(given, configured):
        return configured if given is None else given

    return Limits(cell_timeout=float(pick(cell_timeout, course.config.Execute.get("timeout", _default("cell_timeout")))),
                  notebook_timeout=float(pick(notebook_timeout, conf.notebook_timeout)),
                  memory_bytes=int(pick(memory_limit_mb, conf.memory_limit_mb)) * MiB,
                  disk_bytes=int(conf.disk_limit_mb) * MiB,
                  max_processes=int(conf.max_processes),
                  warm_kernels=bool(conf.warm_kernels))
