"""The public array loaders: ``load_cifar10``, ``load_mnist`` and the CS231n-style ``get_cifar10_data``.

Each finds a copy (``locate``), reads it (``read``; image copies through the cache, ``cache``) and checks the
arrays before returning them. ``download=True`` is the only path that needs torchvision (and the internet).
"""
import warnings

import numpy as np

from . import cache, locate, read
from .locate import DatasetNotFoundError

__all__ = ["MNISTOfflineSplitWarning", "load_cifar10", "load_mnist", "get_cifar10_data"]


class MNISTOfflineSplitWarning(UserWarning):
    """Only MNIST's 10,000 test images were found, so they were split into train and test sets."""


def _download(dataset_class_name, destination):
    """Have torchvision download a dataset into ``destination`` (needs the internet)."""
    import torchvision

    destination.mkdir(parents=True, exist_ok=True)
    getattr(torchvision.datasets, dataset_class_name)(root=str(destination), train=True, download=True)


def _download_or_raise(name, dataset_class_name, root, tried):
    destination = locate.download_dir(root)
    try:
        _download(dataset_class_name, destination)
    except Exception as err:  # noqa: BLE001 - any failure (offline, disk full) ends in the same advice
        raise locate.not_found(name, tried, f"download=True: downloading into {destination} failed: {err!r}") from err


def load_cifar10(root=None, download=False):
    """CIFAR-10 as uint8 arrays, from the first copy found (see ``eep590_utils.data`` for where it looks).

    Inputs:
    - root: a directory to load from (only there); None searches data_dirs(): $EEP590_DATA, ./data, the cache dir
    - download: if nothing is found, let torchvision download the original (needs the internet)

    Returns a tuple of:
    - X_train: uint8 (50000, 32, 32, 3), RGB, HWC
    - y_train: int64 (50000,), class indices into CIFAR10_CLASSES
    - X_test: uint8 (10000, 32, 32, 3)
    - y_test: int64 (10000,)

    Image-folder and archive copies list images class by class; they come back in a fixed shuffled order (the
    same on every machine), like the original batches, so that ``X_train[:n]`` is a mix of classes. Their
    decoded arrays are cached (first load: seconds; afterwards a fraction of a second).
    Raises DatasetNotFoundError (a FileNotFoundError) naming every path tried, and ValueError naming the file
    for a corrupt archive, pickle or image, or an image that is not 32x32.
    """
    source, tried = locate.find(locate.find_cifar10_in, root)
    if source is None:
        if not download:
            raise locate.not_found("CIFAR-10", tried)
        _download_or_raise("CIFAR-10", "CIFAR10", root, tried)
        source, notes = locate.find_cifar10_in(locate.download_dir(root))
        if source is None:
            raise locate.not_found("CIFAR-10", tried + notes, "download=True: torchvision's download left no usable copy")
    kind, path = source

    def check(*arrays):
        read.check_arrays(*arrays, image_shape=(32, 32, 3))

    if kind == "pickles":
        arrays = read.read_cifar_pickles(path)
    else:
        cache_file = locate.cache_dir() / f"cifar10-{cache.fingerprint(kind, path)}.npz"
        arrays = cache.read_cache(cache_file, check)
        if arrays is None:
            arrays = read.read_image_copy(kind, path)
            check(*arrays)
            cache.write_cache(cache_file, arrays)
    check(*arrays)
    return arrays


def load_mnist(root=None, download=False):
    """MNIST as uint8 arrays, from the first copy of its idx files found (see ``eep590_utils.data``).

    Inputs:
    - root: a directory to load from (only there); None searches data_dirs(): $EEP590_DATA, ./data, the cache dir
    - download: if nothing (or only the test set) is found, let torchvision download the originals

    Returns a tuple of:
    - X_train: uint8 (60000, 28, 28); y_train: int64 (60000,) digits 0-9
    - X_test: uint8 (10000, 28, 28); y_test: int64 (10000,)

    Offline copies may hold only the 10,000-image test set (the course's shared data do). Then that set is split
    with a fixed seed, stratified by digit, into X_train (8000, 28, 28) and X_test (2000, 28, 28), and an
    MNISTOfflineSplitWarning says so. Raises DatasetNotFoundError naming every path tried, and ValueError naming
    the file for a truncated or corrupt idx file.
    """
    found, tried = locate.find(locate.find_mnist_in, root)
    if found is None or (download and "train-images" not in found):
        if not download:
            raise locate.not_found("MNIST", tried)
        try:
            _download_or_raise("MNIST", "MNIST", root, tried)
            found, notes = locate.find_mnist_in(locate.download_dir(root))
            tried += notes
        except DatasetNotFoundError:
            if found is None:
                raise
            warnings.warn("download=True: MNIST could not be downloaded; using the test-set-only copy", stacklevel=2)
        if found is None:
            raise locate.not_found("MNIST", tried, "download=True: torchvision's download left no usable copy")
    X_test, y_test = read.read_mnist_pair(found["t10k-images"], found["t10k-labels"])
    if "train-images" in found:
        X_train, y_train = read.read_mnist_pair(found["train-images"], found["train-labels"])
        return X_train, y_train, X_test, y_test
    arrays = read.offline_mnist_split(X_test, y_test)
    warnings.warn(
        f"Only MNIST's {len(y_test):,} test images were found ({found['t10k-images'].parent}); they are split "
        f"(fixed seed, stratified) into {len(arrays[1]):,} training and {len(arrays[3]):,} test images. "
        "Use load_mnist(download=True) online for the full 60,000.",
        MNISTOfflineSplitWarning,
        stacklevel=2,
    )
    return arrays


def get_cifar10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True,
                     channels_first=True, seed=0, root=None, download=False):
    """CIFAR-10 for the NumPy notebooks (CS231n style): float32 arrays in a dict.

    Inputs:
    - num_training, num_validation: sizes of disjoint train/val sets drawn from the 50,000 training images
    - num_test: how many of the 10,000 test images
    - subtract_mean: subtract the mean training image (computed on the returned X_train) from every set
    - channels_first: (N, 3, 32, 32) if True, else (N, 32, 32, 3)
    - seed: which images are drawn (same seed, same sets)
    - root, download: as for load_cifar10

    Returns {'X_train', 'y_train', 'X_val', 'y_val', 'X_test', 'y_test'}: X float32 in pixel units (0-255,
    mean-subtracted if asked), y int64.
    """
    X_train, y_train, X_test, y_test = load_cifar10(root=root, download=download)
    for name, value in (("num_training", num_training), ("num_validation", num_validation), ("num_test", num_test)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if num_training + num_validation > len(X_train):
        raise ValueError(
            f"num_training + num_validation = {num_training + num_validation} exceeds the {len(X_train)} training images"
        )
    if num_test > len(X_test):
        raise ValueError(f"num_test = {num_test} exceeds the {len(X_test)} test images")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X_train))
    train, val = order[:num_training], order[num_training : num_training + num_validation]
    test = rng.permutation(len(X_test))[:num_test]
    data = {
        "X_train": X_train[train].astype(np.float32), "y_train": y_train[train],
        "X_val": X_train[val].astype(np.float32), "y_val": y_train[val],
        "X_test": X_test[test].astype(np.float32), "y_test": y_test[test],
    }
    if subtract_mean and num_training:
        mean_image = data["X_train"].mean(axis=0)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    if channels_first:
        for key in ("X_train", "X_val", "X_test"):
            data[key] = np.ascontiguousarray(data[key].transpose(0, 3, 1, 2))
    return data
