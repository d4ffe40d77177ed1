"""Is this computer ready for a notebook? ``check_setup`` says what is missing, one line per problem.

The first code cell of every notebook (written by ``tests/notebook_setup.py``, the same in every notebook
but for what it asks for) imports this module once the kit is installed and calls

    error = check_setup(datasets=["mnist"], files=["compression_cnn.pt"], download=ON_COLAB, files_url=...)
    if error:
        raise error

- ``datasets``: ``"cifar10"``, ``"mnist"``. A dataset is *located* the way the loaders find it
  (``$EEP590_DATA``, ``./data``, the cache directory), never decoded, so the check takes milliseconds.
  With ``download=True`` (Colab) a missing one is downloaded by the loader (torchvision, needs the internet).
- ``files``: paths relative to the notebook's folder (the kernel's working directory) that the course ships
  beside the notebook (``images/activation.png``, ``compression_cnn.pt``). With ``files_url`` (Colab, where
  only the ``.ipynb`` was opened) a missing one is fetched from ``files_url + "/" + path``.

Everything present: one line on stdout and ``None``. Otherwise a ``SetupError`` (returned, for the cell to
raise) whose message has one line per problem, each saying what to do.

Import-light: no torch, no matplotlib (``eep590_utils.data`` imports NumPy only). Not exported by
``from eep590_utils import *``: only the set-up cell imports it.
"""
import os
import shutil
import urllib.request
from pathlib import Path

__all__ = ["SetupError", "check_setup", "setup_problems", "DATASETS"]

# name -> (label, finder in eep590_utils.data.locate, the loader that downloads it)
DATASETS = {
    "cifar10": ("CIFAR-10", "find_cifar10_in", "load_cifar10"),
    "mnist": ("MNIST", "find_mnist_in", "load_mnist"),
}
FETCH_TIMEOUT_S = 30


class SetupError(RuntimeError):
    """Something this notebook needs is missing; the message says, one line per problem, what to do."""


def _places():
    from .data import locate

    shown = {"EEP590_DATA": lambda path: f"$EEP590_DATA={path}", "./data": lambda path: "./data"}
    return ", ".join(shown.get(label, str)(path) for label, path in locate.search_roots())


def dataset_problem(name, download=False):
    """``None`` when the dataset ``name`` is found (or was downloaded), else a one-line instruction."""
    from .data import locate

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}")
    label, finder, loader = DATASETS[name]
    try:
        source, _ = locate.find(getattr(locate, finder), None)
    except ValueError as err:  # a copy is there but incomplete
        return f"{label}: {err}. Replace it with a complete copy (README, For students)."
    if source is not None:
        return None
    if download:
        from . import data

        try:
            getattr(data, loader)(download=True)
            return None
        except Exception as err:  # any failure becomes the instruction below
            reason = repr(err.__cause__ or err)[:200]
            return f"{label} could not be downloaded ({reason}): check the internet connection and run this cell again."
    return (
        f"{label} not found (looked in {_places()}): set EEP590_DATA to a folder that holds it or put it in ./data, "
        f"or, online, run {loader}(download=True) once (README, For students)."
    )


def _fetch(url, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out)
    os.replace(partial, path)


def files_problem(files, files_url=None, folder="."):
    """``None`` when every path of ``files`` exists in ``folder`` (after fetching from ``files_url``), else one line."""
    folder = Path(folder)
    missing = [f for f in files if not (folder / f).exists()]
    if missing and files_url:
        for name in list(missing):
            try:
                _fetch(f"{files_url.rstrip('/')}/{name}", folder / name)
                missing.remove(name)
            except Exception:  # reported below as missing
                pass
    if not missing:
        return None
    names = ", ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{names} {verb} missing next to this notebook (in {folder.resolve()}): download the whole assignment folder, "
        "not just the .ipynb, and open the notebook from inside it."
    )


def setup_problems(datasets=(), files=(), download=False, files_url=None, folder="."):
    """The list of one-line problems (empty when the notebook has everything it needs)."""
    problems = [files_problem(list(files), files_url, folder)] if files else []
    problems += [dataset_problem(name, download) for name in datasets]
    return [p for p in problems if p]


def check_setup(datasets=(), files=(), download=False, files_url=None, folder="."):
    """``None`` after printing one line when the notebook has its datasets and files, else the ``SetupError`` to raise.

    The caller raises it (``if error: raise error``), so the notebook shows the set-up cell and the message,
    not this module's frames.
    """
    problems = setup_problems(datasets, files, download, files_url, folder)
    if problems:
        return SetupError("\n".join(problems))
    have = [DATASETS[name][0] for name in datasets] + list(files)
    print("Set-up OK" + (f": {', '.join(have)} found." if have else "."))
    return None
