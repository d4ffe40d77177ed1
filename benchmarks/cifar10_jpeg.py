"""Decode the JPEG copy of CIFAR-10 (``cifar10-jpg.tar.gz``) into uint8 arrays.

The archive holds ``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg`` (32x32 RGB JPEGs). The
course package's ``eep590_utils.data.load_cifar10`` is the preferred loader; ``load_cifar10_arrays``
uses it when it can and otherwise falls back to the small tarfile + Pillow decoder below, which
decodes in parallel with ``multiprocessing`` and can cache the result as an ``.npz`` file.
"""
import io
import os
import tarfile
from multiprocessing import Pool

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def _decode_jpeg(data):
    """bytes of one JPEG -> uint8 array of shape (32, 32, 3)."""
    from PIL import Image
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if array.shape != (32, 32, 3):
        raise ValueError(f"expected a 32x32 RGB image, got shape {array.shape}")
    return array


def _read_members(archive, max_per_class):
    """Read the JPEG bytes of the archive: {split: [(label, name, bytes), ...]}."""
    found = {"train": [], "test": []}
    counts = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.lower().endswith(".jpg"):
                continue
            parts = member.name.split("/")
            if len(parts) < 3 or parts[-3] not in found or parts[-2] not in CIFAR10_CLASSES:
                raise ValueError(f"{archive}: unexpected member {member.name!r}; "
                                 "expected train/<class>/NNNN.jpg or test/<class>/NNNN.jpg")
            split, label = parts[-3], CIFAR10_CLASSES.index(parts[-2])
            key = (split, label)
            if max_per_class is not None and counts.get(key, 0) >= max_per_class:
                continue
            counts[key] = counts.get(key, 0) + 1
            found[split].append((label, member.name, tar.extractfile(member).read()))
    for split, items in found.items():
        if not items:
            raise ValueError(f"{archive}: no {split}/<class>/*.jpg images found")
        items.sort(key=lambda item: (item[0], item[1]))  # deterministic order
    return found


def decode_cifar10_archive(archive, max_per_class=None, processes=None):
    """Decode the JPEG CIFAR-10 archive.

    Inputs:
    - archive: path of cifar10-jpg.tar.gz.
    - max_per_class: keep only the first this many images of each class and split (for smoke tests).
    - processes: worker processes for decoding (default: all cores).
    The images come in a fixed shuffled order (not class by class).

    Returns a dict with
    - x_train: uint8 array of shape (N_train, 32, 32, 3); y_train: int64 array of shape (N_train,)
    - x_test: uint8 array of shape (N_test, 32, 32, 3); y_test: int64 array of shape (N_test,)
    """
    if not os.path.isfile(archive):
        raise FileNotFoundError(f"CIFAR-10 JPEG archive not found: {archive}")
    members = _read_members(archive, max_per_class)
    arrays = {}
    with Pool(processes) as pool:
        for split, items in members.items():
            images = pool.map(_decode_jpeg, [data for _, _, data in items], chunksize=512)
            arrays[f"x_{split}"] = np.stack(images)
            arrays[f"y_{split}"] = np.array([label for label, _, _ in items], dtype=np.int64)
            # the archive lists images class by class; a fixed shuffle mixes them (so x[:n] has every class)
            order = np.random.default_rng(0).permutation(len(items))
            arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][order], arrays[f"y_{split}"][order]
    return arrays


def load_cifar10_arrays(archive, cache=None, max_per_class=None):
    """Decoded CIFAR-10 as the dict of ``decode_cifar10_archive``, from the fastest source available.

    Uses ``eep590_utils.data.load_cifar10`` if it is importable (and no subset is asked for); otherwise
    decodes the archive here, reading/writing ``cache`` (an .npz path) when one is given.
    """
    if max_per_class is None:
        arrays = _load_with_course_package(archive)
        if arrays is not None:
            return arrays
    if cache and max_per_class is None and os.path.isfile(cache):
        with np.load(cache) as saved:
            return {key: saved[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    arrays = decode_cifar10_archive(archive, max_per_class=max_per_class)
    if cache and max_per_class is None:
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        np.savez(cache, **arrays)
    return arrays


def _load_with_course_package(archive):
    """eep590_utils.data.load_cifar10 on the archive's folder (cached there); None if the package is missing."""
    try:
        from eep590_utils.data import load_cifar10
    except ImportError:
        return None
    x_train, y_train, x_test, y_test = load_cifar10(root=os.path.dirname(os.path.abspath(archive)))
    return dict(x_train=np.asarray(x_train, dtype=np.uint8), y_train=np.asarray(y_train, dtype=np.int64),
                x_test=np.asarray(x_test, dtype=np.uint8), y_test=np.asarray(y_test, dtype=np.int64))
