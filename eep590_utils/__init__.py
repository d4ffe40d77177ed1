"""EEP590 course utilities: what the notebooks import with ``from eep590_utils import *``.

Students' namespace only: the instructor's grading tools live in
``eep590_utils.grading`` and are not exported here.
"""
from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .gradient_check import *  # noqa: F401,F403
from .gradient_check import __all__ as _gradient_check_all
from .vis import *  # noqa: F401,F403
from .vis import __all__ as _vis_all
from .train import *  # noqa: F401,F403
from .train import __all__ as _train_all

__all__ = [*_checks_all, *_gradient_check_all, *_vis_all, *_train_all]
