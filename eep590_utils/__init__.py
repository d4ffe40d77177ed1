"""EEP590 course utilities: what the notebooks import with ``from eep590_utils import *``.

- checks: check_close, check_shape, check_type, check_true (visible tests with clear failure messages)
- gradient_check: eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error
- data: load_cifar10, load_mnist, get_cifar10_data, cifar10_loaders, mnist_loaders
- vis: show_images, show_filters, show_feature_maps, plot_training_curves, plot_confusion_matrix
- training: get_device, set_seed, train, evaluate, predict, accuracy, confusion_matrix,
  save_checkpoint, load_checkpoint, CheckpointError

Lazy: ``import eep590_utils`` imports none of the submodules (so neither torch nor matplotlib); a name is
imported from its submodule when first used (PEP 562 ``__getattr__``). The grading tools import this
package for ``__file__`` and ``__all__`` and start in a fraction of a second because of it.
``from eep590_utils import *`` binds every name of the static ``__all__`` (it asks for each one).

The training module is ``eep590_utils.training``: ``eep590_utils.train`` is the function ``train``, also after
``import eep590_utils.train`` (a deprecated alias of the module, kept for notebooks already handed out).

Students' namespace only: the instructor's grading tools live in
``eep590_utils.grading`` and are neither imported nor exported here.
"""
import importlib
import sys
import types

# name -> submodule that defines it; tests/test_imports.py checks this against each submodule's __all__
_SUBMODULE_OF = {
    **dict.fromkeys(["check_close", "check_shape", "check_type", "check_true"], "checks"),
    **dict.fromkeys(
        ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse", "rel_error"],
        "gradient_check",
    ),
    **dict.fromkeys(
        [
            "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "MNIST_MEAN", "MNIST_STD",
            "DatasetNotFoundError", "MNISTOfflineSplitWarning", "ArrayImageDataset",
            "load_cifar10", "load_mnist", "get_cifar10_data", "cifar10_loaders", "mnist_loaders",
        ],
        "data",
    ),
    **dict.fromkeys(
        ["show_images", "show_filters", "show_feature_maps", "plot_training_curves", "plot_confusion_matrix"],
        "vis",
    ),
    **dict.fromkeys(
        [
            "get_device", "set_seed", "train", "evaluate", "predict", "accuracy", "confusion_matrix",
            "save_checkpoint", "load_checkpoint", "CheckpointError",
        ],
        "training",
    ),
}
_SUBMODULES = ("checks", "gradient_check", "data", "vis", "training")

__all__ = list(_SUBMODULE_OF)


def __getattr__(name):
    """A public name (imported from its submodule) or a submodule, on first use; then cached here."""
    if name in _SUBMODULE_OF:
        value = getattr(importlib.import_module(f".{_SUBMODULE_OF[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


class _Package(types.ModuleType):
    """This package's module type: it keeps ``train`` the function when the deprecated module
    ``eep590_utils.train`` is imported (the import system would bind that module as the package's ``train``)."""

    def __setattr__(self, name, value):
        if name == "train" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
