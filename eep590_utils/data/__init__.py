"""CIFAR-10 and MNIST as NumPy arrays and as torch ``DataLoader``s, from whatever copy is at hand.

Arrays (what every loader starts from):

- ``load_cifar10()`` -> ``X_train (50000, 32, 32, 3) uint8, y_train (50000,) int64, X_test (10000, 32, 32, 3), y_test``
- ``load_mnist()``   -> ``X_train (N, 28, 28) uint8, y_train (N,) int64, X_test (M, 28, 28), y_test``
- ``get_cifar10_data()`` -> the CS231n dict of float32 train/val/test arrays for the NumPy notebooks.

Loaders: ``cifar10_loaders()`` and ``mnist_loaders()`` return ``(train_loader, val_loader, test_loader)``
that yield ``(x, y)`` batches, ``x`` float32 ``(B, C, H, W)`` normalised with the per-channel
``*_MEAN``/``*_STD`` constants, ``y`` int64 ``(B,)``.

Where the data come from (the first that has them wins):

1. ``root=`` if given (then only there), else ``data_dirs()``: ``$EEP590_DATA``, ``./data`` and the cache
   directory ``cache_dir()`` (``$EEP590_CACHE``, default ``~/.cache/eep590``).
2. Within a directory: torchvision's layout (``cifar-10-batches-py/``, ``MNIST/raw/``), image folders
   of JPEG/PNG files (``cifar10/train/<class>/*.jpg`` or ``train/<class>/...``), a
   ``cifar10-jpg.tar.gz`` archive (read in memory, never extracted), MNIST idx(.gz) files in
   ``mnist/`` or the directory itself.
3. With ``download=True`` and nothing found: torchvision downloads the originals into ``root``,
   ``$EEP590_DATA`` or the cache directory.

Decoded JPEG/PNG images are cached as ``.npz`` files in the cache directory, keyed by the source's path,
size and modification time, so only the first load decodes (a few seconds for all of CIFAR-10: JPEGs are
decoded in batches by torchvision, in threads). A read-only cache directory is used if it holds the arrays
and otherwise ignored. The pickles and idx files are read directly: that is as fast as a cache.

One job per module: ``constants`` (class names, means), ``locate`` (where data live), ``read`` (each kind of
copy into arrays), ``decode`` (JPEG/PNG bytes into pixels), ``cache`` (the .npz cache), ``arrays`` (the
``load_*`` functions) and ``loaders`` (torch datasets and loaders). Only ``loaders`` and the JPEG decoder
import torch, and only when called.
"""
import os
from pathlib import Path

from .arrays import MNISTOfflineSplitWarning, get_cifar10_data, load_cifar10, load_mnist
from .constants import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD
from .loaders import ArrayImageDataset, cifar10_loaders, mnist_loaders
from .locate import DatasetNotFoundError, cache_dir, data_dirs  # noqa: F401 (public: where data are looked for)

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "DatasetNotFoundError",
    "MNISTOfflineSplitWarning",
    "ArrayImageDataset",
    "load_cifar10",
    "load_mnist",
    "get_cifar10_data",
    "cifar10_loaders",
    "mnist_loaders",
]

# Deprecated aliases, kept for eep590_utils/grading until it moves to data_dirs()/cache_dir(); then delete them.
_cache_dir = cache_dir
_REPO_SHARED_DATA = Path(os.environ.get("EEP590_DATA", "/nonexistent"))
