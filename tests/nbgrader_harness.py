"""Grade notebooks with plain nbgrader in a throw-away copy of the course (for assignment tests)."""
import copy
import os
import shutil
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]


def read_notebook(path):
    return nbformat.read(str(path), as_version=4)


def cell_by_grade_id(nb, grade_id):
    """The cell whose nbgrader ``grade_id`` is ``grade_id`` (KeyError if none)."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def with_cell_source(nb, grade_id, source):
    """A copy of ``nb`` whose cell ``grade_id`` has ``source`` (to plant a wrong answer)."""
    nb = copy.deepcopy(nb)
    cell_by_grade_id(nb, grade_id).source = source
    return nb


def replace_in_cell(nb, grade_id, old, new, once=False):
    """A copy of ``nb`` whose cell ``grade_id`` has ``old`` replaced by ``new``; ``old`` must be in it (exactly
    once with ``once``), so a planted mistake never silently plants nothing."""
    source = cell_by_grade_id(nb, grade_id).source
    found = source.count(old)
    where = "not" if not found else "more than once"
    assert found == 1 if once else found >= 1, f"{grade_id}: the text to replace is {where} in the cell: {old!r}"
    return with_cell_source(nb, grade_id, source.replace(old, new))


def grade_ids(nb, kind="tests"):
    """grade_ids of autograded test cells (``kind='tests'``) or of all graded cells (``'all'``)."""
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade_id"):
            continue
        if kind == "all" and (meta.get("grade") or meta.get("task")):
            out.append(meta["grade_id"])
        elif kind == "tests" and meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            out.append(meta["grade_id"])
    return out


class ScratchCourse:
    def __init__(self, root):
        self.root = Path(root)
        shutil.copytree(REPO / "source", self.root / "source")
        shutil.copy(REPO / "nbgrader_config.py", self.root / "nbgrader_config.py")
        self._generated = set()
        self._count = 0
        bindir = str(Path(sys.executable).parent)  # nbgrader shells out to alembic
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.db_url = "sqlite:///" + str(self.root / "gradebook.db")
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

    def generate(self, hw):
        if hw not in self._generated:
            result = self.api().generate_assignment(hw)
            if not result["success"]:
                raise RuntimeError(f"generate_assignment {hw} failed:\n{result.get('log')}\n{result.get('error')}")
            self._generated.add(hw)
        return self.root / "release" / hw

    def autograde(self, hw, submissions, workers=2):
        """submissions: {student: {notebook_name: NotebookNode or path}} -> grades by grade_id.

        Graded as a class would be: ``eep590 autograde`` (sandboxed where bubblewrap is installed), so every
        test cell that has a judge in ``source/<hw>/judges/`` is decided by it, outside the kernel."""
        from eep590_utils.grading.autograde import autograde
        from eep590_utils.grading.course import Course
        from eep590_utils.grading.sandbox import bwrap_path

        self.generate(hw)
        for student, notebooks in submissions.items():
            folder = self.root / "submitted" / student / hw
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            for name, nb in notebooks.items():
                nb = read_notebook(nb) if isinstance(nb, (str, Path)) else nb
                nbformat.write(nb, str(folder / f"{name}.ipynb"))
        course = Course(self.root, db_url="sqlite:///" + str(self.root / "gradebook.db"))
        self.records = autograde(course, hw, students=sorted(submissions), workers=workers, echo=lambda *_: None,
                                 sandbox=bwrap_path() is not None)
        grades = {}
        with course.gradebook() as gb:
            for student, notebooks in submissions.items():
                grades[student] = {}
                for name in notebooks:
                    sub = gb.find_submission_notebook(name, hw, student)
                    grades[student][name] = {g.name: (g.score, g.max_score) for g in sub.grades}
        return grades

    def autograded_notebook(self, hw, student, name):
        return read_notebook(self.root / "autograded" / student / hw / f"{name}.ipynb")
