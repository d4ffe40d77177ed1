"""Where the data live: the folders searched, the cache folder, and what each folder holds.

Search order without ``root=``: ``$EEP590_DATA``, ``./data``, then the cache directory (where
``download=True`` puts originals when ``$EEP590_DATA`` is unset). Nothing here knows about the course
repository's layout: tests, benchmarks and the Makefile point ``EEP590_DATA`` at their copy.
"""
import os
import tempfile
from pathlib import Path

from .constants import CIFAR10_CLASSES, CIFAR_ARCHIVE, CIFAR_PICKLE_DIR, CIFAR_PICKLES, IMAGE_SUFFIXES, MNIST_STEMS

__all__ = ["DatasetNotFoundError", "cache_dir", "data_dirs"]

HOW_TO_GET = {
    "CIFAR-10": (
        "To get CIFAR-10: online, call load_cifar10(download=True) (torchvision downloads the original, 170 MB); "
        "offline, point the EEP590_DATA environment variable (or root=) at a directory holding "
        f"cifar10/{CIFAR_ARCHIVE}, cifar10/train/<class>/*.jpg or {CIFAR_PICKLE_DIR}/."
    ),
    "MNIST": (
        "To get MNIST: online, call load_mnist(download=True) (torchvision downloads the original idx files, 12 MB); "
        "offline, point the EEP590_DATA environment variable (or root=) at a directory holding "
        "mnist/t10k-images-idx3-ubyte.gz and mnist/t10k-labels-idx1-ubyte.gz (and the train-* files if you have them)."
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset in any place searched; ``.tried`` lists those places, the message says how to get one."""

    def __init__(self, message, tried=()):
        super().__init__(message)
        self.tried = list(tried)


def cache_dir():
    """Path of the decoded-array cache: ``$EEP590_CACHE``, else ``~/.cache/eep590``.

    It may not exist yet, or be read-only (graded kernels): loaders then decode without keeping the arrays.
    """
    env = os.environ.get("EEP590_CACHE")
    if env:
        return Path(env).expanduser()
    try:
        return Path.home() / ".cache" / "eep590"
    except RuntimeError:  # no home directory (some sandboxes)
        return Path(tempfile.gettempdir()) / "eep590-cache"


def search_roots(root=None):
    """``[(label, Path)]`` to search, in order, without duplicates: ``root`` alone, else the default places."""
    if root is not None:
        return [("root", Path(os.fspath(root)).expanduser())]
    roots = []
    if os.environ.get("EEP590_DATA"):
        roots.append(("EEP590_DATA", Path(os.environ["EEP590_DATA"]).expanduser()))
    roots += [("./data", Path.cwd() / "data"), ("cache", cache_dir())]
    unique, seen = [], set()
    for label, path in roots:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


def data_dirs():
    """``[Path]``: the existing folders the loaders search when no ``root=`` is given, in search order.

    That is ``$EEP590_DATA`` (if set), ``./data`` and the cache directory, those that exist.
    """
    return [path for _, path in search_roots() if path.is_dir()]


def download_dir(root):
    """Where ``download=True`` puts the originals: ``root``, ``$EEP590_DATA`` or the cache directory."""
    if root is not None:
        return Path(os.fspath(root)).expanduser()
    if os.environ.get("EEP590_DATA"):
        return Path(os.environ["EEP590_DATA"]).expanduser()
    return cache_dir()


def not_found(name, tried, extra=""):
    """The DatasetNotFoundError for ``name`` ('CIFAR-10' or 'MNIST'): every place tried, then how to get it."""
    lines = [f"{name} not found. Looked in these places, in this order:"]
    lines += [f"  {entry}" for entry in tried]
    if extra:
        lines.append(extra)
    lines.append(HOW_TO_GET[name])
    return DatasetNotFoundError("\n".join(lines), tried)


def find(finder, root):
    """``(source, tried)``: the first source ``finder(directory)`` recognises in the search roots (or None)."""
    tried = []
    for label, directory in search_roots(root):
        if not directory.is_dir():
            tried.append(f"{directory} ({label}): no such directory")
            continue
        source, notes = finder(directory)
        tried += [f"{note} ({label})" for note in notes]
        if source is not None:
            return source, tried
    return None, tried


def _has_images(directory):
    with os.scandir(directory) as entries:
        return any(e.name.lower().endswith(IMAGE_SUFFIXES) and not e.name.startswith(".") for e in entries)


def _image_folder_state(base):
    """Whether ``base/train`` and ``base/test`` hold ``<class>/*.jpg`` folders: 'ok', 'missing', 'empty' or a problem."""
    present = []
    for split in ("train", "test"):
        split_dir = base / split
        if not split_dir.is_dir():
            continue
        class_dirs = [d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
        names = {d.name for d in class_dirs}
        if not names & set(CIFAR10_CLASSES):
            continue  # some other dataset's image folder, or empty
        unknown = sorted(names - set(CIFAR10_CLASSES))
        if unknown:
            raise ValueError(
                f"{split_dir} holds folders that are not CIFAR-10 classes: {unknown}; expected only {list(CIFAR10_CLASSES)}"
            )
        if any(_has_images(d) for d in class_dirs):
            present.append(split)
    if not present:
        return "missing or empty"
    if len(present) == 1:
        missing = "test" if present == ["train"] else "train"
        raise ValueError(f"{base} has {present[0]}/<class>/ images but no {missing}/<class>/ images: the copy is incomplete")
    return "ok"


def find_cifar10_in(directory):
    """``((kind, path), notes)``: the CIFAR-10 copy in ``directory`` (or None) and what was looked at.

    kind is 'pickles' (torchvision's cifar-10-batches-py), 'folder' (``train/<class>/*.jpg``) or 'archive'.
    """
    notes = []
    for base in (directory, directory / "cifar10"):
        pickles = base / CIFAR_PICKLE_DIR
        if pickles.is_dir():
            missing = [name for name in CIFAR_PICKLES if not (pickles / name).is_file()]
            if len(missing) < len(CIFAR_PICKLES):
                if missing:
                    raise ValueError(f"{pickles} is incomplete: missing {missing}")
                return ("pickles", pickles), notes
        notes.append(f"{pickles}: {'empty' if pickles.is_dir() else 'missing'}")
    for base in (directory / "cifar10", directory):
        state = _image_folder_state(base)
        if state == "ok":
            return ("folder", base), notes
        notes.append(f"{base}/train/<class>/ and {base}/test/<class>/ image folders: {state}")
    for archive in (directory / CIFAR_ARCHIVE, directory / "cifar10" / CIFAR_ARCHIVE):
        if archive.is_file():
            return ("archive", archive), notes
        notes.append(f"{archive}: missing")
    return None, notes


def _idx_file(directory, stem):
    """``directory/<stem>-idxN-ubyte`` (or ``.idxN-ubyte``), uncompressed or ``.gz``, if there is one."""
    ndim = 3 if stem.endswith("images") else 1
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = directory / f"{stem}{sep}idx{ndim}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def find_mnist_in(directory):
    """``({stem: path}, notes)``: the MNIST idx files in ``directory`` (or None) and what was looked at."""
    notes = []
    for base in (directory / "MNIST" / "raw", directory / "mnist", directory / "mnist" / "raw", directory):
        files = {stem: _idx_file(base, stem) for stem in MNIST_STEMS}
        found = {stem: path for stem, path in files.items() if path is not None}
        if not found:
            notes.append(f"{base}/t10k-images-idx3-ubyte[.gz]: {'missing' if base.is_dir() else 'no such directory'}")
            continue
        for images, labels in (("t10k-images", "t10k-labels"), ("train-images", "train-labels")):
            if (images in found) != (labels in found):
                have, lack = (images, labels) if images in found else (labels, images)
                raise ValueError(f"{found[have]} has no matching {lack} idx file in {base}")
        if "t10k-images" not in found:
            raise ValueError(f"{base} has MNIST's training files but not the test files (t10k-images, t10k-labels)")
        return found, notes
    return None, notes
