"""Copying a student's files without ever following what they point to.

A submission may hold symlinks (to the gradebook, to ``/etc/passwd``), FIFOs that block a reader,
device files, or files far larger than any homework needs. :func:`copy_tree_safely` copies regular
files only, never through a link, and returns what it skipped with the reason, so collecting, staging
and running a notebook all see the same, safe copy.
"""
import os
import shutil
import stat
from pathlib import Path

MAX_FILE_BYTES = 256 * 2**20  # one file of a submission (datasets live in the data folders, not here)
MAX_SUBMISSION_BYTES = 1024 * 2**20  # all the files of one submission


def copy_tree_safely(src, dest, skip_notebooks=False, ignore=(".ipynb_checkpoints",)):
    """Copy the regular files and folders under ``src`` to ``dest`` without following any link.

    Returns ``[(relative path, what it is)]`` for what was skipped: symlinks, FIFOs, sockets, devices,
    files over :data:`MAX_FILE_BYTES`, and everything past :data:`MAX_SUBMISSION_BYTES` in all.
    """
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    skipped, total = [], 0
    for folder, dirs, files in os.walk(src, followlinks=False):
        rel = Path(folder).relative_to(src)
        for name in sorted(dirs):
            path = Path(folder) / name
            if name in ignore:
                dirs.remove(name)
            elif path.is_symlink():
                dirs.remove(name)
                skipped.append([str(rel / name), "a symbolic link"])
            else:
                (dest / rel / name).mkdir(exist_ok=True)
        for name in sorted(files):
            path, target = Path(folder) / name, dest / rel / name
            info = os.lstat(path)
            kind = special_kind(info.st_mode)
            if kind:
                skipped.append([str(rel / name), kind])
            elif skip_notebooks and name.endswith(".ipynb"):
                continue
            elif info.st_size > MAX_FILE_BYTES:
                skipped.append([str(rel / name), f"a file of {info.st_size / 2**20:.0f} MiB (over {MAX_FILE_BYTES // 2**20} MiB)"])
            elif total + info.st_size > MAX_SUBMISSION_BYTES:
                skipped.append([str(rel / name), f"past the {MAX_SUBMISSION_BYTES // 2**20} MiB a submission may hold"])
            else:
                total += info.st_size
                _copy_regular_file(path, target)
    return skipped


def special_kind(mode):
    """What a file of this ``st_mode`` is when it is no regular file (a symbolic link, a FIFO...), else None."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _copy_regular_file(path, target):
    """Copy one file opened with O_NOFOLLOW (a file swapped for a link since lstat is not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        with os.fdopen(fd, "rb", closefd=False) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    finally:
        os.close(fd)
