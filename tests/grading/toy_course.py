"""A tiny course for testing the grading pipeline, independent of the real assignments.

Assignment ``toy`` has one notebook ``toy.ipynb``: ``add`` (visible test 1 point, hidden test
2 points), ``mul`` (visible test 1 point), and a written answer (2 points) in the kit's pattern: a locked
0-point task cell with the question and the mark scheme, then the manually graded answer cell that
carries the points (its source here is the model answer; the release makes it ``YOUR ANSWER HERE``).
"""
import copy
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]
HIDDEN_CHECK = "assert add(10, -3) == 7, 'add is wrong on negative numbers'"
MODEL_ANSWER = "Counting a objects then b objects gives the same total as b then a: MODEL ANSWER TEXT."
WRITTEN_ID = "why_commutative"


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
        new_markdown_cell("Why is addition commutative? (2 points)\n\n"
                          "=== BEGIN MARK SCHEME ===\nModel answer: SECRET RUBRIC TEXT\n=== END MARK SCHEME ===",
                          metadata=_meta("why_commutative_question", task=True, locked=True, points=0)),
        new_markdown_cell(MODEL_ANSWER, metadata=_meta(WRITTEN_ID, grade=True, solution=True, points=2)),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return nb


# The toy's judges (source/toy/judges/toy.py): every test cell is decided outside the student's kernel.
TOY_JUDGES = '''"""Judges of toy.ipynb."""
import torch

from eep590_utils.checks import check_close
from eep590_utils.grading.judge import judge


@judge("add_visible")
def add_visible(student, gen):
    check_close(student.add(2, 3), 5, name="add(2, 3)")


@judge("add_hidden")
def add_hidden(student, gen):
    for _ in range(3):
        a, b = int(torch.randint(1, 100, (1,), generator=gen)), -int(torch.randint(1, 100, (1,), generator=gen))
        got = student.add(a, b)
        assert isinstance(got, (int, float)) and got == a + b, "add is wrong on negative numbers"


@judge("mul_visible")
def mul_visible(student, gen):
    check_close(student.mul(2, 3), 6, name="mul(2, 3)")
'''


def make_toy_course(root, judges=True):
    """A course directory at ``root`` with the kit's nbgrader_config.py, ``source/toy/toy.ipynb`` and
    (unless ``judges=False``) its judges in ``source/toy/judges/toy.py``."""
    root = Path(root)
    (root / "source" / "toy").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(toy_source_notebook(), root / "source" / "toy" / "toy.ipynb")
    if judges:
        (root / "source" / "toy" / "judges").mkdir()
        (root / "source" / "toy" / "judges" / "toy.py").write_text(TOY_JUDGES)
    return root


def solved(release_nb, add="return a + b", mul="return a * b", answer=None):
    """A student's submission: the release with the two functions filled in (and the written answer,
    when ``answer`` is given; otherwise it stays ``YOUR ANSWER HERE`` and autograde scores it 0)."""
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "add":
            cell.source = f"def add(a, b):\n    {add}"
        elif grade_id == "mul":
            cell.source = f"def mul(a, b):\n    {mul}"
        elif grade_id == WRITTEN_ID and answer is not None:
            cell.source = answer
    return nb


def submit(course_root, student, nb, name="toy.ipynb", assignment="toy"):
    folder = Path(course_root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, (str, bytes)):
        (folder / name).write_bytes(nb if isinstance(nb, bytes) else nb.encode())
    else:
        nbformat.write(nb, folder / name)
    return folder
