"""A tiny course for testing the grading pipeline, independent of the real assignments.

Assignment ``toy`` has one notebook ``toy.ipynb``: ``add`` (visible test 1 point, hidden test
2 points), ``mul`` (visible test 1 point), and a written answer (task, 2 points).
"""
import copy
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]
HIDDEN_CHECK = "assert add(10, -3) == 7, 'add is wrong on negative numbers'"


def _meta(grade_id, **kw):
    meta = {"schema_version": 3, "grade_id": grade_id, "grade": False, "solution": False, "locked": False}
    meta.update(kw)
    return {"nbgrader": meta}


def toy_source_notebook():
    cells = [
        new_markdown_cell("# Toy assignment (6 points)"),
        new_code_cell("import os\nimport numpy as np\nfrom eep590_utils import *", metadata=_meta("imports", locked=True)),
        new_code_cell("def add(a, b):\n    \"\"\"a + b\"\"\"\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
                      metadata=_meta("add", solution=True)),
        new_code_cell("check_close(add(2, 3), 5, name='add(2, 3)')", metadata=_meta("add_visible", grade=True, locked=True, points=1)),
        new_code_cell("# add works on negative numbers\n### BEGIN HIDDEN TESTS\n" + HIDDEN_CHECK + "\n### END HIDDEN TESTS",
                      metadata=_meta("add_hidden", grade=True, locked=True, points=2)),
        new_code_cell("def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION",
                      metadata=_meta("mul", solution=True)),
        new_code_cell("check_close(mul(2, 3), 6, name='mul(2, 3)')", metadata=_meta("mul_visible", grade=True, locked=True, points=1)),
        new_markdown_cell("Why is addition commutative? (2 points)\n\n=== BEGIN MARK SCHEME ===\nModel answer: SECRET RUBRIC TEXT\n=== END MARK SCHEME ===",
                          metadata=_meta("why_commutative", task=True, locked=True, points=2)),
        new_markdown_cell("YOUR ANSWER HERE"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return nb


def make_toy_course(root):
    """A course directory at ``root`` with the kit's nbgrader_config.py and ``source/toy/toy.ipynb``."""
    root = Path(root)
    (root / "source" / "toy").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(toy_source_notebook(), root / "source" / "toy" / "toy.ipynb")
    return root


def solved(release_nb, add="return a + b", mul="return a * b"):
    """A student's submission: the release with the two functions filled in."""
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "add":
            cell.source = f"def add(a, b):\n    {add}"
        elif grade_id == "mul":
            cell.source = f"def mul(a, b):\n    {mul}"
    return nb


def submit(course_root, student, nb, name="toy.ipynb", assignment="toy"):
    folder = Path(course_root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, (str, bytes)):
        (folder / name).write_bytes(nb if isinstance(nb, bytes) else nb.encode())
    else:
        nbformat.write(nb, folder / name)
    return folder
