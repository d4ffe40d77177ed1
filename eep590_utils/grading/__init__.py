"""Instructor and TA tooling: release, collect, sandboxed parallel autograde, feedback, class report,
grade export and the bundled demo. Not part of what students import (``from eep590_utils import *``).

The command line is ``eep590`` (see ``cli.py``); every step is also a plain function taking a
:class:`~eep590_utils.grading.course.Course`.
"""
from .course import Course

__all__ = ["Course"]
