"""The decoded-array cache: ``.npz`` files in ``cache_dir()``, keyed by the source, written atomically.

Only image copies (JPEG/PNG folders and archives) are cached: decoding them is the one slow step. The key
changes whenever the source does (path, size, modification time), so a stale cache is never read. Writes go
to a temporary file in the cache directory and are renamed into place, so a reader (or a second process
decoding at the same time) sees either no file or a whole one, never a torn one; the last rename wins and
both writers wrote the same arrays. A read-only or full cache directory is not an error: the arrays are
returned, just not kept.
"""
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = []

CACHE_VERSION = 1  # part of every cache key: bump it when the decoded arrays change
ARRAY_NAMES = ("X_train", "y_train", "X_test", "y_test")


def fingerprint(kind, path):
    """A key that changes whenever the source changes: path, size and mtime (of every image, for folders)."""
    path = Path(path).resolve()
    parts = [f"v{CACHE_VERSION}", kind, str(path)]
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


def read_cache(path, check):
    """The four cached arrays, or None when absent, unreadable or not what ``check(*arrays)`` accepts."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = tuple(npz[name] for name in ARRAY_NAMES)
        check(*arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays


def write_cache(path, arrays):
    """Write the four arrays atomically (temp file in the same directory, then rename); skip a read-only directory."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(zip(ARRAY_NAMES, arrays)))
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
