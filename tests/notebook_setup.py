"""Insert (or refresh) the set-up check cell at the top of source notebooks: re-runnable, idempotent.

    python tests/notebook_setup.py source/hw1/*.ipynb source/hw3/*.ipynb
    python tests/notebook_setup.py --check source/hw1/*.ipynb     # exit 1 if a notebook's cell is missing or stale

then ``flock /tmp/eep590-release.lock eep590 release <hw>``. The cell is the notebook's first code cell (after
the title), a locked, ungraded nbgrader cell with grade_id ``setup_check``. It works without the kit: on Colab
it installs ``eep590_utils`` (``%pip install --no-deps KIT_URL``: Colab already has torch and the rest), elsewhere
it stops with a one-line instruction. Then ``eep590_utils.setup_check.check_setup`` looks for what this notebook
needs, which is read from the notebook itself:

- datasets: ``load_cifar10``/``cifar10_loaders``/``get_cifar10_data`` in its code -> ``cifar10``;
  ``load_mnist``/``mnist_loaders`` -> ``mnist``;
- files the course ships beside the notebook (everything in ``source/<hw>/`` but notebooks and ``judges/``)
  that the notebook names: by path or file name, or every file of a folder it names (``images/``).

At grading time (``NBGRADER_EXECUTION`` set) the cell installs and checks nothing: it only imports the kit.

Where the kit comes from is set once, here (``KIT_REPO``, ``KIT_BRANCH``): change it for another course's copy,
re-run this script on every notebook and regenerate the releases.
"""
import argparse
import re
import sys
from pathlib import Path

import nbformat

from eep590_utils.grading import cells as grading_cells

KIT_REPO = "github.com/eep590/course-kit"
KIT_BRANCH = "main"
KIT_URL = f"git+https://{KIT_REPO}"  # what pip installs on Colab and what the instructions say
FILES_URL = f"https://raw.githubusercontent.com/{KIT_REPO.split('/', 1)[1]}/{KIT_BRANCH}/release"  # + /<hw>/<file>

GRADE_ID = "setup_check"
CELL_ID = "setup-check"
NBGRADER = {"grade": False, "grade_id": GRADE_ID, "locked": True, "schema_version": 3, "solution": False, "task": False}

DATASET_CALLS = {
    "cifar10": r"\b(load_cifar10|cifar10_loaders|get_cifar10_data)\b",
    "mnist": r"\b(load_mnist|mnist_loaders)\b",
}
NOT_SHIPPED = {"judges", ".ipynb_checkpoints", "__pycache__"}

TEMPLATE = '''\
# Set-up check: run this cell first. It stops with a one-line instruction if the course kit (eep590_utils),
# a dataset or a file this notebook needs is missing. On Colab it installs the kit and downloads what is missing.
import importlib.util
import os
import sys

KIT_URL = "{kit_url}"
ON_COLAB = "google.colab" in sys.modules
GRADED_NOW = bool(os.environ.get("NBGRADER_EXECUTION"))  # the autograder: install nothing, check nothing

if importlib.util.find_spec("eep590_utils") is None:
    if ON_COLAB and not GRADED_NOW:
        %pip install --quiet --no-deps {{KIT_URL}}
        importlib.invalidate_caches()
    else:
        raise ModuleNotFoundError("eep590_utils is not installed in this kernel's Python: install it as the README's "
                                  f"'For students' says (CPU-only torch first, then  pip install {{KIT_URL}}), then restart the kernel")
if not GRADED_NOW:
    try:
        from eep590_utils.setup_check import check_setup
    except ImportError:
        raise ImportError(f"eep590_utils is too old for this notebook: run  pip install -U {{KIT_URL}}  "
                          "and restart the kernel") from None
    error = check_setup(datasets={datasets!r}, files={files!r}, download=ON_COLAB,
                        files_url="{files_url}" if ON_COLAB else None)
    if error:
        raise error  # what is missing and what to do, one line each'''


def shipped_files(hw_dir):
    """Paths (relative, POSIX) of the files the course ships beside the notebooks of ``hw_dir``."""
    hw_dir = Path(hw_dir)
    found = []
    for path in sorted(hw_dir.rglob("*")):
        rel = path.relative_to(hw_dir)
        if path.is_file() and path.suffix != ".ipynb" and not NOT_SHIPPED & set(rel.parts) and not path.name.startswith("."):
            found.append(rel.as_posix())
    return found


def notebook_needs(nb, hw_dir):
    """``(datasets, files)`` this notebook needs, read from its cells (the set-up cell excluded)."""
    cells = [c for c in nb.cells if grading_cells.grade_id(c) != GRADE_ID]
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    text = "\n".join(c.source for c in cells)
    datasets = [name for name, pattern in DATASET_CALLS.items() if re.search(pattern, code)]
    files = []
    for rel in shipped_files(hw_dir):
        parts = rel.split("/")
        folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
        named = rel in text or re.search(rf"(?<![\w.-]){re.escape(parts[-1])}(?![\w-])", text)
        in_named_folder = any(f"{folder}/" in text or re.search(rf"[\"']{re.escape(folder)}[\"']", text) for folder in folders)
        if named or in_named_folder:
            files.append(rel)
    return datasets, files


def cell_source(datasets, files, hw):
    return TEMPLATE.format(kit_url=KIT_URL, datasets=list(datasets), files=list(files), files_url=f"{FILES_URL}/{hw}")


def setup_cell(nb, hw_dir):
    datasets, files = notebook_needs(nb, hw_dir)
    cell = nbformat.v4.new_code_cell(cell_source(datasets, files, Path(hw_dir).name))
    cell.id = CELL_ID
    cell.metadata["nbgrader"] = dict(NBGRADER)
    return cell


def find_setup_cell(nb):
    return next((i for i, c in enumerate(nb.cells) if grading_cells.grade_id(c) == GRADE_ID), None)


def insert_setup_cell(nb, hw_dir):
    """Put the set-up cell right before the notebook's first other code cell; ``True`` if ``nb`` changed."""
    fresh = setup_cell(nb, hw_dir)
    index = find_setup_cell(nb)
    if index is not None:
        old = nb.cells.pop(index)
        if old.get("id") and old.id != CELL_ID:
            fresh.id = old.id
    else:
        old = None
        if any(c.get("id") == CELL_ID for c in nb.cells):
            raise ValueError(f"a cell other than the set-up cell has the id {CELL_ID!r}")
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, fresh)
    return old is None or index != first_code or old.source != fresh.source or old.metadata != fresh.metadata


def process(path, check_only=False):
    """Insert or refresh the cell in the notebook at ``path`` (``source/<hw>/<name>.ipynb``); ``True`` if it changed."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = insert_setup_cell(nb, path.parent)
    if changed and not check_only:
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is missing or stale")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks:
        if path.suffix != ".ipynb" or "source" not in path.resolve().parts:
            parser.error(f"{path}: expected a source notebook (source/<hw>/<name>.ipynb)")
        changed = process(path, check_only=args.check)
        print(f"{path}: {('stale' if args.check else 'updated') if changed else 'up to date'}")
        stale += [path] if changed else []
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
