"""CIFAR-10 and MNIST as NumPy arrays and as torch ``DataLoader``s, from whatever copy is at hand.

Arrays (what every loader starts from):

- ``load_cifar10()`` -> ``X_train (50000, 32, 32, 3) uint8, y_train (50000,) int64, X_test (10000, 32, 32, 3), y_test``
- ``load_mnist()``   -> ``X_train (N, 28, 28) uint8, y_train (N,) int64, X_test (M, 28, 28), y_test``
- ``get_cifar10_data()`` -> the CS231n dict of float32 train/val/test arrays for the NumPy notebooks.

Loaders: ``cifar10_loaders()`` and ``mnist_loaders()`` return ``(train_loader, val_loader, test_loader)``
that yield ``(x, y)`` batches, ``x`` float32 ``(B, C, H, W)`` normalised with the per-channel
``*_MEAN``/``*_STD`` constants, ``y`` int64 ``(B,)``.

Where the data come from (the first that has them wins):

1. ``root=`` if given (then only there), else the directories ``$EEP590_DATA``, ``./data``, the cache
   directory (``$EEP590_CACHE``, default ``~/.cache/eep590``) and ``../shared/data`` beside the course
   repository.
2. Within a directory: torchvision's layout (``cifar-10-batches-py/``, ``MNIST/raw/``), image folders
   of JPEG/PNG files (``cifar10/train/<class>/*.jpg`` or ``train/<class>/...``), a
   ``cifar10-jpg.tar.gz`` archive (read in memory, never extracted), MNIST idx(.gz) files in
   ``mnist/`` or the directory itself.
3. With ``download=True`` and nothing found: torchvision downloads the originals into ``root``,
   ``$EEP590_DATA`` or the cache directory.

Decoded JPEG/PNG images are cached as ``.npz`` files in the cache directory, keyed by the source's path,
size and modification time, so only the first load decodes. A read-only cache directory is used if it
holds the arrays and otherwise ignored. The pickles and idx files are read directly: that is as fast as
a cache.
"""
import gzip
import hashlib
import io
import multiprocessing
import os
import pickle
import struct
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

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

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_CIFAR_ARCHIVE = "cifar10-jpg.tar.gz"
_CIFAR_PICKLE_DIR = "cifar-10-batches-py"
_CIFAR_PICKLES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
_MNIST_STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")
_MNIST_OFFLINE_TEST_EVERY = 5  # offline (test set only): a fifth of each digit is kept for testing, 2000 of 10,000
_SPLIT_SEED = 0  # fixed order of image-folder copies and of the offline MNIST split: the same everywhere
_CACHE_VERSION = 1  # part of every cache key: bump it when the decoded arrays change
_PARALLEL_MIN_IMAGES = 4000  # below this a process pool costs more than it saves
_REPO_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_HOW_TO_GET = {
    "CIFAR-10": (
        "To get CIFAR-10: online, call load_cifar10(download=True) (torchvision downloads the original, 170 MB); "
        "offline, point the EEP590_DATA environment variable (or root=) at a directory holding "
        f"cifar10/{_CIFAR_ARCHIVE}, cifar10/train/<class>/*.jpg or {_CIFAR_PICKLE_DIR}/."
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


class MNISTOfflineSplitWarning(UserWarning):
    """Only MNIST's 10,000 test images were found, so they were split into train and test sets."""


# ---------------------------------------------------------------------------------------------------------------------
# Where to look


def _cache_dir():
    """The cache directory: ``$EEP590_CACHE``, else ``~/.cache/eep590`` (it may not exist, or be read-only)."""
    env = os.environ.get("EEP590_CACHE")
    if env:
        return Path(env).expanduser()
    try:
        return Path.home() / ".cache" / "eep590"
    except RuntimeError:  # no home directory (some sandboxes)
        return Path(tempfile.gettempdir()) / "eep590-cache"


def _search_roots(root):
    """``[(label, Path)]`` to search, in order, without duplicates."""
    if root is not None:
        return [("root", Path(os.fspath(root)).expanduser())]
    roots = []
    if os.environ.get("EEP590_DATA"):
        roots.append(("EEP590_DATA", Path(os.environ["EEP590_DATA"]).expanduser()))
    roots += [("./data", Path.cwd() / "data"), ("cache", _cache_dir()), ("course shared data", _REPO_SHARED_DATA)]
    unique, seen = [], set()
    for label, path in roots:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


def _download_dir(root):
    """Where ``download=True`` puts the originals: ``root``, ``$EEP590_DATA`` or the cache directory."""
    if root is not None:
        return Path(os.fspath(root)).expanduser()
    if os.environ.get("EEP590_DATA"):
        return Path(os.environ["EEP590_DATA"]).expanduser()
    return _cache_dir()


def _not_found(name, tried, extra=""):
    lines = [f"{name} not found. Looked in these places, in this order:"]
    lines += [f"  {entry}" for entry in tried]
    if extra:
        lines.append(extra)
    lines.append(_HOW_TO_GET[name])
    return DatasetNotFoundError("\n".join(lines), tried)


def _find(name, finder, root):
    """The first source ``finder(directory)`` recognises in the search roots, else a DatasetNotFoundError."""
    tried = []
    for label, directory in _search_roots(root):
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
        return any(e.name.lower().endswith(_IMAGE_SUFFIXES) and not e.name.startswith(".") for e in entries)


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


def _find_cifar10_in(directory):
    """``((kind, path), notes)``: the CIFAR-10 copy in ``directory`` (or None) and what was looked at."""
    notes = []
    for base in (directory, directory / "cifar10"):
        pickles = base / _CIFAR_PICKLE_DIR
        if pickles.is_dir():
            missing = [name for name in _CIFAR_PICKLES if not (pickles / name).is_file()]
            if len(missing) < len(_CIFAR_PICKLES):
                if missing:
                    raise ValueError(f"{pickles} is incomplete: missing {missing}")
                return ("pickles", pickles), notes
        notes.append(f"{pickles}: {'empty' if pickles.is_dir() else 'missing'}")
    for base in (directory / "cifar10", directory):
        state = _image_folder_state(base)
        if state == "ok":
            return ("folder", base), notes
        notes.append(f"{base}/train/<class>/ and {base}/test/<class>/ image folders: {state}")
    for archive in (directory / _CIFAR_ARCHIVE, directory / "cifar10" / _CIFAR_ARCHIVE):
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


def _find_mnist_in(directory):
    """``({stem: path}, notes)``: the MNIST idx files in ``directory`` (or None) and what was looked at."""
    notes = []
    for base in (directory / "MNIST" / "raw", directory / "mnist", directory / "mnist" / "raw", directory):
        files = {stem: _idx_file(base, stem) for stem in _MNIST_STEMS}
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


# ---------------------------------------------------------------------------------------------------------------------
# Cache


def _fingerprint(kind, path):
    """A key that changes whenever the source changes: path, size and mtime (of every image, for folders)."""
    path = Path(path).resolve()
    parts = [f"v{_CACHE_VERSION}", kind, str(path)]
    if path.is_file():
        stat = path.stat()
        parts += [str(stat.st_size), str(stat.st_mtime_ns)]
    else:
        count = total = latest = 0
        walks = [os.walk(path / split) for split in ("train", "test")]
        for dirpath, _, filenames in (step for walk in walks for step in walk):
            for filename in filenames:
                stat = os.stat(os.path.join(dirpath, filename))
                count, total, latest = count + 1, total + stat.st_size, max(latest, stat.st_mtime_ns)
        parts += [str(count), str(total), str(latest)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


_ARRAY_NAMES = ("X_train", "y_train", "X_test", "y_test")


def _read_cache(path, check):
    """The cached arrays, or None when absent, unreadable or not what ``check`` expects."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = tuple(npz[name] for name in _ARRAY_NAMES)
        check(*arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays


def _write_cache(path, arrays):
    """Write atomically (temp file in the same directory, then rename); do nothing where the directory is read-only."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(zip(_ARRAY_NAMES, arrays)))
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # read-only or full cache directory: the arrays are still returned, just not kept
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------------------------------
# Decoding


def _decode_image(name, blob, size):
    """One JPEG/PNG (bytes, or None to read the file ``name``) as a uint8 (H, W, 3) RGB array."""
    from PIL import Image

    pixels = None
    try:
        if blob is None:
            with open(name, "rb") as f:
                blob = f.read()
        with Image.open(io.BytesIO(blob), formats=("JPEG", "PNG")) as image:
            got = image.size
            if got == size:
                pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # PIL.UnidentifiedImageError and truncated files are OSErrors
        raise ValueError(f"{name}: not a readable JPEG/PNG image ({err})") from None
    if pixels is None:
        raise ValueError(f"{name}: image is {got[0]}x{got[1]} pixels, expected {size[0]}x{size[1]} for CIFAR-10")
    return pixels


def _decode_chunk(items, size=(32, 32)):
    """``[(name, bytes or None)]`` -> uint8 (N, H, W, 3). Runs in pool workers."""
    out = np.empty((len(items), size[1], size[0], 3), dtype=np.uint8)
    for i, (name, blob) in enumerate(items):
        out[i] = _decode_image(name, blob, size)
    return out


def _decode_images(items):
    """Decode ``[(name, bytes or None)]`` in order into one uint8 (N, 32, 32, 3) array, on all cores when there are many."""
    workers = os.cpu_count() or 1
    if len(items) < _PARALLEL_MIN_IMAGES or workers < 2:
        return _decode_chunk(items)
    step = -(-len(items) // (4 * workers))
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    try:
        pool = multiprocessing.Pool(workers)
    except (OSError, ValueError, ImportError):  # no /dev/shm, no fork: decode here instead
        return _decode_chunk(items)
    out = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    with pool:
        for start, part in zip(range(0, len(items), step), pool.imap(_decode_chunk, chunks)):
            out[start : start + len(part)] = part  # filled as the chunks arrive: no second full-size copy
    return out


def _image_key(parts, where):
    """``(split, label, filename)`` from a path's last three parts ``split/class/file``, or None if not an image."""
    if len(parts) < 3:
        return None
    split, class_name, filename = parts[-3:]
    if split not in ("train", "test") or filename.startswith(".") or not filename.lower().endswith(_IMAGE_SUFFIXES):
        return None
    if class_name not in CIFAR10_CLASSES:
        raise ValueError(f"{where}: '{class_name}' is not a CIFAR-10 class; expected one of {list(CIFAR10_CLASSES)}")
    return split, CIFAR10_CLASSES.index(class_name), filename


def _archive_items(path):
    """``{split: [(label, filename, name, bytes)]}`` from a (gzipped) tar of ``split/class/file`` images.

    The archive is streamed, never extracted: only the image bytes are held in memory (about 90 MB for CIFAR-10).
    """
    items = {"train": [], "test": []}
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                key = _image_key(member.name.split("/"), f"{path}:{member.name}")
                if key is None:
                    continue
                split, label, filename = key
                items[split].append((label, filename, f"{path}:{member.name}", archive.extractfile(member).read()))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(
            f"{path}: not a readable .tar.gz archive, or truncated ({type(err).__name__}: {err}); "
            "replace it with a fresh copy"
        ) from None
    return items


def _folder_items(base):
    """``{split: [(label, filename, path, None)]}`` from ``base/split/class/file`` image folders."""
    items = {"train": [], "test": []}
    for split in items:
        for class_dir in sorted((base / split).iterdir()):
            if not class_dir.is_dir() or class_dir.name.startswith("."):
                continue
            for file in class_dir.iterdir():
                key = _image_key([split, class_dir.name, file.name], str(file))
                if key is not None:
                    items[split].append((key[1], key[2], str(file), None))
    return items


def _decode_image_source(kind, path):
    """CIFAR-10 arrays from an image folder or archive, in a fixed shuffled order (not class by class).

    Entries are sorted by (class, file name) and then permuted with a fixed seed, so the order is the same
    whatever order the archive or the file system lists them in.
    """
    items = _archive_items(path) if kind == "archive" else _folder_items(path)
    ordered = {}
    for split in ("train", "test"):
        entries = sorted(items[split], key=lambda entry: entry[:2])
        if not entries:
            raise ValueError(f"{path} holds no {split}/<class>/ images")
        order = np.random.default_rng(_SPLIT_SEED).permutation(len(entries))
        ordered[split] = [entries[i] for i in order]
    entries = ordered["train"] + ordered["test"]
    images = _decode_images([(name, blob) for _, _, name, blob in entries])
    labels = np.array([label for label, *_ in entries], dtype=np.int64)
    n_train = len(ordered["train"])
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


def _unpickle_cifar(path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = np.asarray(batch.get("data", batch.get(b"data")))
        labels = batch.get("labels", batch.get(b"labels"))
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable CIFAR-10 batch pickle ({err})") from None
    if data.dtype != np.uint8 or labels is None or len(labels) != len(images):
        raise ValueError(f"{path}: not a CIFAR-10 batch (expected uint8 'data' (N, 3072) and N 'labels')")
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def _load_cifar_pickles(directory):
    batches = [_unpickle_cifar(directory / name) for name in _CIFAR_PICKLES]
    X_train = np.concatenate([images for images, _ in batches[:5]])
    y_train = np.concatenate([labels for _, labels in batches[:5]])
    return X_train, y_train, batches[5][0], batches[5][1]


def _check_arrays(X_train, y_train, X_test, y_test, image_shape, num_classes=10):
    """ValueError unless the four arrays are uint8 images of ``image_shape`` with matching int64 labels in range."""
    for X, y, split in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        if X.dtype != np.uint8 or X.ndim != 1 + len(image_shape) or X.shape[1:] != image_shape:
            raise ValueError(f"{split} images are {X.dtype} {X.shape}, expected uint8 (N, {', '.join(map(str, image_shape))})")
        if y.dtype != np.int64 or y.shape != (len(X),):
            raise ValueError(f"{split} labels are {y.dtype} {y.shape}, expected int64 ({len(X)},)")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{split} labels range over [{y.min()}, {y.max()}], expected [0, {num_classes - 1}]")


def _read_idx(path, ndim):
    """An MNIST idx file of unsigned bytes (``.gz`` or not) as a uint8 array of its ``ndim`` dimensions."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: not a readable gzip file ({err}); it may be truncated") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx file ({len(raw)} bytes, shorter than its {header}-byte header)")
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise ValueError(
            f"{path}: not an idx file of {ndim}-d unsigned bytes (magic {raw[:4].hex()}, expected 000008{ndim:02x})"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    got = len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "too long"
        raise ValueError(f"{path}: {problem} idx file: its header promises {shape} = {expected} bytes, it holds {got}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read_mnist_pair(images_path, labels_path):
    images = _read_idx(images_path, 3)
    labels = _read_idx(labels_path, 1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28 for MNIST")
    if len(labels) != len(images):
        raise ValueError(f"{labels_path} holds {len(labels)} labels but {images_path} holds {len(images)} images")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels go up to {labels.max()}, expected digits 0-9")
    return images, labels


def _offline_mnist_split(images, labels):
    """Split MNIST's test set into train/test: fixed seed, stratified (a fifth of each digit, rounded, for testing)."""
    rng = np.random.default_rng(_SPLIT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test[members[: round(len(members) / _MNIST_OFFLINE_TEST_EVERY)]] = True
    return images[~test], labels[~test], images[test], labels[test]


# ---------------------------------------------------------------------------------------------------------------------
# Public loaders: arrays


def _download(dataset_class_name, destination):
    """Have torchvision download a dataset into ``destination`` (needs the internet)."""
    import torchvision

    destination.mkdir(parents=True, exist_ok=True)
    getattr(torchvision.datasets, dataset_class_name)(root=str(destination), train=True, download=True)


def _download_or_raise(name, dataset_class_name, root, tried):
    destination = _download_dir(root)
    try:
        _download(dataset_class_name, destination)
    except Exception as err:  # noqa: BLE001 - any failure (offline, disk full) ends in the same advice
        raise _not_found(name, tried, f"download=True: downloading into {destination} failed: {err!r}") from err


def load_cifar10(root=None, download=False):
    """CIFAR-10 as uint8 arrays, from the first copy found (see the module docstring for where it looks).

    Inputs:
    - root: a directory to load from (only there); None searches $EEP590_DATA, ./data, the cache dir, ../shared/data
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
    source, tried = _find("CIFAR-10", _find_cifar10_in, root)
    if source is None:
        if not download:
            raise _not_found("CIFAR-10", tried)
        _download_or_raise("CIFAR-10", "CIFAR10", root, tried)
        source, notes = _find_cifar10_in(_download_dir(root))
        if source is None:
            raise _not_found("CIFAR-10", tried + notes, "download=True: torchvision's download left no usable copy")
    kind, path = source

    def check(*arrays):
        _check_arrays(*arrays, image_shape=(32, 32, 3))

    if kind == "pickles":
        arrays = _load_cifar_pickles(path)
    else:
        cache_file = _cache_dir() / f"cifar10-{_fingerprint(kind, path)}.npz"
        arrays = _read_cache(cache_file, check)
        if arrays is None:
            arrays = _decode_image_source(kind, path)
            check(*arrays)
            _write_cache(cache_file, arrays)
    check(*arrays)
    return arrays


def load_mnist(root=None, download=False):
    """MNIST as uint8 arrays, from the first copy of its idx files found (see the module docstring).

    Inputs:
    - root: a directory to load from (only there); None searches $EEP590_DATA, ./data, the cache dir, ../shared/data
    - download: if nothing (or only the test set) is found, let torchvision download the originals

    Returns a tuple of:
    - X_train: uint8 (60000, 28, 28); y_train: int64 (60000,) digits 0-9
    - X_test: uint8 (10000, 28, 28); y_test: int64 (10000,)

    Offline copies may hold only the 10,000-image test set (the course's shared data do). Then that set is split
    with a fixed seed, stratified by digit, into X_train (8000, 28, 28) and X_test (2000, 28, 28), and an
    MNISTOfflineSplitWarning says so. Raises DatasetNotFoundError naming every path tried, and ValueError naming
    the file for a truncated or corrupt idx file.
    """
    found, tried = _find("MNIST", _find_mnist_in, root)
    if found is None or (download and "train-images" not in found):
        if not download:
            raise _not_found("MNIST", tried)
        try:
            _download_or_raise("MNIST", "MNIST", root, tried)
            found, notes = _find_mnist_in(_download_dir(root))
            tried += notes
        except DatasetNotFoundError:
            if found is None:
                raise
            warnings.warn("download=True: MNIST could not be downloaded; using the test-set-only copy", stacklevel=2)
        if found is None:
            raise _not_found("MNIST", tried, "download=True: torchvision's download left no usable copy")
    X_test, y_test = _read_mnist_pair(found["t10k-images"], found["t10k-labels"])
    if "train-images" in found:
        X_train, y_train = _read_mnist_pair(found["train-images"], found["train-labels"])
        return X_train, y_train, X_test, y_test
    arrays = _offline_mnist_split(X_test, y_test)
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


# ---------------------------------------------------------------------------------------------------------------------
# Public loaders: torch


class ArrayImageDataset:
    """In-memory uint8 images served as normalised float tensors: a map-style dataset for torch's DataLoader.

    Inputs:
    - images: uint8 array (N, H, W, C) or (N, H, W) (one channel)
    - labels: integer array (N,)
    - mean, std: per-channel constants (C values) in units of pixel / 255
    - augment: if True, each access takes a random 32x32-style crop of the image padded by 4 zero pixels and
      flips it horizontally with probability 1/2 (torch's global RNG: seed it with torch.manual_seed)
    - transform: optional callable applied to the normalised (C, H, W) tensor
    - indices: optional (N,) record of where the images came from (kept as ``.indices``)

    Item i is ``(x, y)``: x float32 tensor (C, H, W) = (pixel / 255 - mean) / std, y int64 tensor ().
    """

    def __init__(self, images, labels, mean, std, augment=False, transform=None, indices=None):
        import torch

        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"images must be uint8 (N, H, W, C) or (N, H, W), got {images.dtype} {images.shape}")
        if images.ndim == 3:
            images = images[..., None]
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
        channels = images.shape[-1]
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(f"mean and std need {channels} values (std > 0), got mean={mean}, std={std}")
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment, self.transform, self.padding = augment, transform, 4
        self.indices = None if indices is None else np.asarray(indices)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        import torch
        import torch.nn.functional as F

        image = self.images[i]
        if self.augment:
            pad = self.padding
            height, width = image.shape[1:]
            top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            image = F.pad(image, (pad, pad, pad, pad))[:, top : top + height, left : left + width]
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
        x = (image.float() / 255 - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]


def _split_indices(n, val_size, seed, subset):
    """Seeded disjoint ``(train_idx, val_idx)`` of range(n); ``subset`` keeps that many training indices."""
    if not isinstance(val_size, (int, np.integer)) or not 0 <= val_size < n:
        raise ValueError(f"val_size must be an integer in [0, {n - 1}], got {val_size!r}")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:val_size], order[val_size:]
    if subset is not None:
        if not isinstance(subset, (int, np.integer)) or not 1 <= subset <= len(train):
            raise ValueError(f"subset must be an integer in [1, {len(train)}] (training images after val), got {subset!r}")
        train = train[:subset]
    return train, val


def _make_loaders(datasets, batch_size, seed, num_workers):
    import torch
    from torch.utils.data import DataLoader

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    train, val, test = datasets
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers),
        DataLoader(val, batch_size=batch_size, shuffle=False, num_workers=num_workers),
        DataLoader(test, batch_size=batch_size, shuffle=False, num_workers=num_workers),
    )


def cifar10_loaders(batch_size=128, val_size=5000, seed=0, augment=True, subset=None, root=None, num_workers=0,
                    download=False):
    """CIFAR-10 ``(train_loader, val_loader, test_loader)`` of normalised tensors.

    Inputs:
    - batch_size: images per batch
    - val_size: training images held out for validation (seeded, disjoint from train)
    - seed: the train/val split, the subset and the order of training batches
    - augment: random crop (padding 4) + horizontal flip on the training split only
    - subset: keep only this many training images (None: all the rest after val), for fast runs
    - root, download: as for load_cifar10; num_workers: DataLoader worker processes

    Batches are ``(x, y)``: x float32 (B, 3, 32, 32) normalised with CIFAR10_MEAN/CIFAR10_STD, y int64 (B,).
    Each loader's ``.dataset`` is an ArrayImageDataset whose ``.indices`` say which images of load_cifar10's
    X_train (or X_test) it holds.
    """
    X_train, y_train, X_test, y_test = load_cifar10(root=root, download=download)
    train, val = _split_indices(len(X_train), val_size, seed, subset)
    datasets = (
        ArrayImageDataset(X_train[train], y_train[train], CIFAR10_MEAN, CIFAR10_STD, augment=augment, indices=train),
        ArrayImageDataset(X_train[val], y_train[val], CIFAR10_MEAN, CIFAR10_STD, indices=val),
        ArrayImageDataset(X_test, y_test, CIFAR10_MEAN, CIFAR10_STD, indices=np.arange(len(X_test))),
    )
    return _make_loaders(datasets, batch_size, seed, num_workers)


def mnist_loaders(batch_size=128, val_size=None, seed=0, subset=None, root=None, num_workers=0, download=False):
    """MNIST ``(train_loader, val_loader, test_loader)`` of normalised tensors (no augmentation).

    Inputs:
    - batch_size: images per batch
    - val_size: training images held out for validation; None holds out a tenth (6000 of 60,000, or 800 of the
      8000 of the offline test-set-only copy: see load_mnist)
    - seed, subset, root, num_workers, download: as for cifar10_loaders

    Batches are ``(x, y)``: x float32 (B, 1, 28, 28) normalised with MNIST_MEAN/MNIST_STD, y int64 (B,).
    """
    X_train, y_train, X_test, y_test = load_mnist(root=root, download=download)
    if val_size is None:
        val_size = len(X_train) // 10
    train, val = _split_indices(len(X_train), val_size, seed, subset)
    datasets = (
        ArrayImageDataset(X_train[train], y_train[train], MNIST_MEAN, MNIST_STD, indices=train),
        ArrayImageDataset(X_train[val], y_train[val], MNIST_MEAN, MNIST_STD, indices=val),
        ArrayImageDataset(X_test, y_test, MNIST_MEAN, MNIST_STD, indices=np.arange(len(X_test))),
    )
    return _make_loaders(datasets, batch_size, seed, num_workers)
