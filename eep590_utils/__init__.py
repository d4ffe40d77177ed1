"""EEP590 course utilities: what the notebooks import with ``from eep590_utils import *``.

- checks: check_close, check_shape, check_type, check_true (visible tests with clear failure messages)
- gradient_check: eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error
- data: load_cifar10, load_mnist, get_cifar10_data, cifar10_loaders, mnist_loaders
- vis: show_images, show_filters, show_feature_maps, plot_training_curves, plot_confusion_matrix
- train: get_device, set_seed, train, evaluate, predict, accuracy, confusion_matrix,
  save_checkpoint, load_checkpoint, CheckpointError

Students' namespace only: the instructor's grading tools live in
``eep590_utils.grading`` and are neither imported nor exported here.
"""
from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .gradient_check import *  # noqa: F401,F403
from .gradient_check import __all__ as _gradient_check_all
from .data import *  # noqa: F401,F403
from .data import __all__ as _data_all
from .vis import *  # noqa: F401,F403
from .vis import __all__ as _vis_all
from .train import *  # noqa: F401,F403
from .train import __all__ as _train_all

__all__ = [*_checks_all, *_gradient_check_all, *_data_all, *_vis_all, *_train_all]
