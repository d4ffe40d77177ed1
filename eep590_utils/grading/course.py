"""The course directory and its nbgrader configuration, loaded once and shared by every step.

nbgrader itself (seconds to import) is imported when a command first needs it (its API, its
``CourseDirectory``), so ``eep590 --help``, argument errors, ``eep590 report`` and ``eep590 export`` never
import it: the course's paths, id and gradebook URL are read from the configuration with nbgrader's
defaults (``tests/grading/test_course.py`` pins them against ``CourseDirectory``).
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from traitlets.config.loader import PyFileConfigLoader

CONFIG_FILE = "nbgrader_config.py"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the repository when installed in editable mode
# nbgrader 0.9.6's CourseDirectory defaults (pinned by a test)
DEFAULT_DIRECTORIES = {"source": "source", "release": "release", "submitted": "submitted",
                       "autograded": "autograded", "feedback": "feedback"}


def normalize_db_url(url: str | None) -> str | None:
    """A gradebook URL SQLAlchemy can open with the drivers installed: ``postgresql://`` (as the README
    writes it) means psycopg 3 to SQLAlchemy 2, which the kit does not install; psycopg2 is."""
    if url and url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class CourseError(RuntimeError):
    """A problem with the course directory or the gradebook, said in words."""


def find_course_root(start: str | os.PathLike | None = None) -> Path:
    """The course directory: ``$EEP590_COURSE``, else ``start`` (or the current directory) or one of its
    parents holding ``nbgrader_config.py``, else the repository this package lives in."""
    if os.environ.get("EEP590_COURSE"):
        return Path(os.environ["EEP590_COURSE"]).resolve()
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    if (PACKAGE_ROOT / CONFIG_FILE).is_file():
        return PACKAGE_ROOT
    raise CourseError(f"no {CONFIG_FILE} in {here} or its parents, and EEP590_COURSE is not set")


def load_config(root: str | os.PathLike) -> Any:
    """The traitlets ``Config`` of ``root/nbgrader_config.py``."""
    path = Path(root) / CONFIG_FILE
    if not path.is_file():
        raise CourseError(f"{path} does not exist")
    return PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()


class Course:
    """One course directory: ``source/``, ``release/``, ``submitted/``, ``autograded/``, ``feedback/``,
    ``reports/`` and the gradebook, with nbgrader's API configured for it."""

    def __init__(self, root: str | os.PathLike | None = None, db_url: str | None = None, config: Any = None):
        self.root = Path(root).resolve() if root else find_course_root()
        self.config = load_config(self.root)
        if config is not None:
            self.config.merge(config)
        self.config.CourseDirectory.root = str(self.root)
        if db_url:
            self.config.CourseDirectory.db_url = db_url
        if "db_url" in self.config.CourseDirectory:
            self.config.CourseDirectory.db_url = normalize_db_url(self.config.CourseDirectory.db_url)

    @cached_property
    def coursedir(self) -> Any:
        """nbgrader's ``CourseDirectory`` for this course (collect and stage hand it to nbgrader's apps)."""
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config)

    def _setting(self, name: str, default: str) -> str:
        value = self.config.CourseDirectory.get(name, default)
        return value if isinstance(value, str) else default

    @cached_property
    def api(self) -> Any:
        """nbgrader's ``NbGraderAPI`` for this course (generate_assignment, autograde, feedback...)."""
        from nbgrader.apps.api import NbGraderAPI

        return NbGraderAPI(coursedir=self.coursedir, config=self.config)

    @property
    def db_url(self) -> str:
        return self._setting("db_url", "") or f"sqlite:///{self.root / 'gradebook.db'}"

    @property
    def course_id(self) -> str:
        return self._setting("course_id", "")

    def path(self, kind: str, student: str | None = None, assignment: str | None = None) -> Path:
        """``root/<kind directory>[/<student>]/<assignment>`` for kind in source, release, submitted,
        autograded, feedback (nbgrader's names, as configured)."""
        if kind not in DEFAULT_DIRECTORIES:
            raise ValueError(f"unknown course folder {kind!r} (one of {', '.join(DEFAULT_DIRECTORIES)})")
        directory = self._setting(f"{kind}_directory", DEFAULT_DIRECTORIES[kind])
        parts = [directory] + ([student] if student else []) + ([assignment] if assignment else [])
        return self.root.joinpath(*parts)

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def assignments(self) -> list[str]:
        """Assignment ids: the folders of ``source/`` that hold notebooks, sorted."""
        source = self.path("source")
        if not source.is_dir():
            return []
        return sorted(d.name for d in source.iterdir() if d.is_dir() and any(d.glob("*.ipynb")))

    def notebooks(self, assignment: str) -> list[str]:
        """Notebook names (without ``.ipynb``) of an assignment, from ``source/``."""
        names = sorted(p.stem for p in self.path("source", assignment=assignment).glob("*.ipynb"))
        if not names:
            raise CourseError(f"assignment {assignment!r} has no notebooks in {self.path('source', assignment=assignment)}"
                              f" (assignments: {', '.join(self.assignments()) or 'none'})")
        return names

    def submitted_students(self, assignment: str) -> list[str]:
        """Students with a ``submitted/<student>/<assignment>/`` folder, sorted."""
        base = self.path("submitted")
        if not base.is_dir():
            return []
        return sorted(d.name for d in base.iterdir() if (d / assignment).is_dir())

    def gradebook(self) -> Any:
        """A new nbgrader ``Gradebook`` (use it as a context manager)."""
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)
