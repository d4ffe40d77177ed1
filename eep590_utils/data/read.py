"""Reading each kind of copy into the four arrays: image archives and folders, CIFAR-10 pickles, MNIST idx files.

Image copies list images class by class; ``read_image_copy`` puts them in a fixed shuffled order (the same on
every machine) and has ``decode.decode_images`` turn them into pixels. Archives are read in memory, never
extracted: the ``.tar.gz`` is gunzipped in one call and its headers walked directly (a tenth of the time
``tarfile`` takes for 60,000 members); anything unusual in it (long names, links, a bad checksum) is left to
``tarfile``, which also names the problem of a damaged archive.
"""
import gzip
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .constants import CIFAR10_CLASSES, CIFAR_PICKLES, IMAGE_SUFFIXES, MNIST_OFFLINE_TEST_EVERY, SPLIT_SEED
from .decode import decode_images

__all__ = []

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)


# ---------------------------------------------------------------------------------------------------------------------
# Image archives and folders


def _image_key(parts, where):
    """``(split, label, filename)`` from a path's last three parts ``split/class/file``, or None if not an image."""
    if len(parts) < 3:
        return None
    split, class_name, filename = parts[-3:]
    if split not in ("train", "test") or filename.startswith(".") or not filename.lower().endswith(IMAGE_SUFFIXES):
        return None
    if class_name not in CIFAR10_CLASSES:
        raise ValueError(f"{where}: '{class_name}' is not a CIFAR-10 class; expected one of {list(CIFAR10_CLASSES)}")
    return split, CIFAR10_CLASSES.index(class_name), filename


def _octal(field):
    return int(field.rstrip(b"\0 ").decode("ascii") or "0", 8)


def tar_files(raw, checksums=True):
    """``[(name, bytes)]`` of the regular files of an uncompressed tar held in ``raw`` (bytes), in archive order.

    Reads plain POSIX (ustar) and GNU headers; returns None for anything it leaves to ``tarfile``: pax or GNU
    long-name headers, links, a header without the ustar magic or (``checksums``) with a bad checksum, a
    truncated archive. Skipping the checksums halves the time; do it only where gzip's CRC vouched for ``raw``.
    """
    files, position, end = [], 0, len(raw)
    while position + _BLOCK <= end:
        header = raw[position : position + _BLOCK]
        if header == _ZERO_BLOCK:
            return files  # end-of-archive block
        if header[257:262] != b"ustar":
            return None
        try:
            size = _octal(header[124:136])
            if checksums and _octal(header[148:156]) != sum(header[:148]) + 8 * ord(" ") + sum(header[156:]):
                return None
        except (ValueError, UnicodeDecodeError):
            return None
        start = position + _BLOCK
        kind = header[156:157]
        if kind in (b"0", b"\0"):
            name = header[:100].split(b"\0", 1)[0]
            if header[257:263] == b"ustar\x00":  # POSIX: a prefix field (GNU headers keep times there)
                prefix = header[345:500].split(b"\0", 1)[0]
                name = prefix + b"/" + name if prefix else name
            if start + size > end:
                return None
            try:
                files.append((name.decode("utf-8"), raw[start : start + size]))
            except UnicodeDecodeError:
                return None
        elif kind != b"5":  # directories carry nothing; anything else is tarfile's job
            return None
        position = start + -(-size // _BLOCK) * _BLOCK
    return files if position == end else None


def _tarfile_files(path):
    """``[(name, bytes)]`` of the regular files of any archive ``tarfile`` reads (streamed, never extracted)."""
    with tarfile.open(path, mode="r:*") as archive:
        return [(member.name, archive.extractfile(member).read()) for member in archive if member.isfile()]


def archive_items(path):
    """``{split: [(label, filename, name, bytes)]}`` from a (gzipped) tar of ``split/class/file`` images.

    Only the image bytes are held in memory (about 90 MB for CIFAR-10); ``name`` is ``archive:member``.
    """
    items = {"train": [], "test": []}
    try:
        raw = Path(path).read_bytes()
        gzipped = raw[:2] == b"\x1f\x8b"
        if gzipped:
            raw = gzip.decompress(raw)  # checks the CRC-32 of the whole tar
        files = tar_files(raw, checksums=not gzipped)
        if files is None:
            files = _tarfile_files(path)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(
            f"{path}: not a readable .tar.gz archive, or truncated ({type(err).__name__}: {err}); "
            "replace it with a fresh copy"
        ) from None
    for member_name, blob in files:
        key = _image_key(member_name.split("/"), f"{path}:{member_name}")
        if key is not None:
            split, label, filename = key
            items[split].append((label, filename, f"{path}:{member_name}", blob))
    return items


def folder_items(base):
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


def read_image_copy(kind, path):
    """CIFAR-10 arrays from an image folder or archive (kind 'folder' or 'archive'), in a fixed shuffled order.

    Entries are sorted by (class, file name) and then permuted with a fixed seed, so the order is the same
    whatever order the archive or the file system lists them in.
    """
    items = archive_items(path) if kind == "archive" else folder_items(path)
    ordered = {}
    for split in ("train", "test"):
        entries = sorted(items[split], key=lambda entry: entry[:2])
        if not entries:
            raise ValueError(f"{path} holds no {split}/<class>/ images")
        order = np.random.default_rng(SPLIT_SEED).permutation(len(entries))
        ordered[split] = [entries[i] for i in order]
    entries = ordered["train"] + ordered["test"]
    images = decode_images([(name, blob) for _, _, name, blob in entries])
    labels = np.array([label for label, *_ in entries], dtype=np.int64)
    n_train = len(ordered["train"])
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


# ---------------------------------------------------------------------------------------------------------------------
# CIFAR-10 pickles (torchvision's cifar-10-batches-py)


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


def read_cifar_pickles(directory):
    """The four CIFAR-10 arrays from torchvision's ``cifar-10-batches-py`` directory (fast enough uncached)."""
    batches = [_unpickle_cifar(directory / name) for name in CIFAR_PICKLES]
    X_train = np.concatenate([images for images, _ in batches[:5]])
    y_train = np.concatenate([labels for _, labels in batches[:5]])
    return X_train, y_train, batches[5][0], batches[5][1]


def check_arrays(X_train, y_train, X_test, y_test, image_shape, num_classes=10):
    """ValueError unless the four arrays are uint8 images of ``image_shape`` with matching int64 labels in range."""
    for X, y, split in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        if X.dtype != np.uint8 or X.ndim != 1 + len(image_shape) or X.shape[1:] != image_shape:
            raise ValueError(f"{split} images are {X.dtype} {X.shape}, expected uint8 (N, {', '.join(map(str, image_shape))})")
        if y.dtype != np.int64 or y.shape != (len(X),):
            raise ValueError(f"{split} labels are {y.dtype} {y.shape}, expected int64 ({len(X)},)")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{split} labels range over [{y.min()}, {y.max()}], expected [0, {num_classes - 1}]")


# ---------------------------------------------------------------------------------------------------------------------
# MNIST idx files


def read_idx(path, ndim):
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


def read_mnist_pair(images_path, labels_path):
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` from a pair of idx files, checked against each other."""
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28 for MNIST")
    if len(labels) != len(images):
        raise ValueError(f"{labels_path} holds {len(labels)} labels but {images_path} holds {len(images)} images")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels go up to {labels.max()}, expected digits 0-9")
    return images, labels


def offline_mnist_split(images, labels):
    """Split MNIST's test set into train/test: fixed seed, stratified (a fifth of each digit, rounded, for testing)."""
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test[members[: round(len(members) / MNIST_OFFLINE_TEST_EVERY)]] = True
    return images[~test], labels[~test], images[test], labels[test]
