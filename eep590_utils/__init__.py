"""EEP590 course utilities: what the notebooks import with ``from eep590_utils import *``.

Students' namespace only: the instructor's grading tools live in
``eep590_utils.grading`` and are not exported here.
"""
from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .gradient_check import *  # noqa: F401,F403
from .gradient_check import __all__ as _gradient_check_all

__all__ = [*_checks_all, *_gradient_check_all]
