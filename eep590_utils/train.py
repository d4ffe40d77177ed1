"""Deprecated module path: the training helpers live in ``eep590_utils.training``.

Kept because notebooks already handed out say ``from eep590_utils.train import accuracy, ...``. Importing it
leaves ``eep590_utils.train`` the function ``train`` (see ``eep590_utils.__init__``); new code imports from
``eep590_utils`` or ``eep590_utils.training``.
"""
from .training import *  # noqa: F401,F403
from .training import __all__  # noqa: F401
