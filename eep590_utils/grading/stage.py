"""Phase 1 of ``eep590 autograde``: stage and sanitize each submission, one at a time, each in isolation.

Whatever a submission folder holds, staging reads it as data and never lets it act on the grader:

- files are copied without following links; symlinks, FIFOs, sockets and devices are skipped and
  recorded (a link to ``../../gradebook.db`` or ``/etc/shadow`` must never become a readable file), and
  so are files over :data:`MAX_FILE_BYTES`;
- a notebook that is not a readable notebook is left out with the reason (it scores 0 as missing);
- nbgrader metadata that nbgrader would choke on (not a mapping, a ``grade_id`` that is not text, a
  ``grade_id`` used twice by a copy-pasted cell) is repaired in the staged copy and the repair is said
  in words, so the rest of the notebook is graded;
- locked cells the student edited or deleted are recorded (nbgrader restores them from the gradebook);
- nbgrader's own sanitize step (``ClearOutput``, ``OverwriteCells``, ...) writes ``autograded/``; a
  notebook nbgrader cannot process costs only itself.
"""
import os
import re
import shutil
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.utils import capture_log, temp_attrs

from .cells import nbgrader_meta
from .files import MAX_FILE_BYTES, copy_tree_safely, special_kind
from .records import CORRUPT, FAILED, GRADED, MISSING
from .scan import scan_notebook


def read_submitted_notebook(path):
    """The notebook at ``path``, or raise ``ValueError`` saying in words why it cannot be graded."""
    info = os.lstat(path)
    kind = special_kind(info.st_mode)
    if kind:
        raise ValueError(f"{kind}, not a notebook file")
    if info.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{info.st_size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB a notebook may be")
    try:
        with open(path, encoding="utf-8") as handle:
            nb = nbformat.read(handle, as_version=4)
    except UnicodeDecodeError as error:
        raise ValueError(f"not a text file (byte {error.start} is not UTF-8)") from None
    except Exception as error:  # json.JSONDecodeError, nbformat.reader.NotJSONError, ...
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"not a readable notebook: {message[:200]}") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook: it has no list of cells")
    if not isinstance(nb.get("metadata", {}), dict):
        raise ValueError("not a valid notebook: its metadata is not a mapping")
    for index, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"not a valid notebook: cell {index} has no valid cell_type")
        if not isinstance(cell.get("source", ""), str):
            raise ValueError(f"not a valid notebook: cell {index} has a source that is not text")
        if not isinstance(cell.get("metadata", {}), dict):
            cell["metadata"] = nbformat.NotebookNode()
        if cell.get("cell_type") == "code" and not isinstance(cell.get("outputs", []), list):
            cell["outputs"] = []
    return nb


def repair_metadata(nb, release_ids=()):
    """Make the nbgrader metadata of a submitted notebook processable, in place; return what was
    repaired, in words. A cell whose metadata cannot be trusted loses it and runs as an ordinary cell
    (a test cell the student broke this way is restored from the gradebook, as a deleted one is)."""
    repairs, seen = [], set()
    release_ids = set(release_ids)
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        problem = None
        if not isinstance(meta, dict):
            problem = "its nbgrader metadata is not a mapping"
        elif "grade_id" in meta and not isinstance(meta["grade_id"], str):
            problem = "its grade_id is not text"
        elif not meta.get("grade_id") and (meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task")):
            problem = "it is marked for grading but has no grade_id"
        elif meta.get("grade_id") in seen:
            problem = f"it repeats grade_id {meta['grade_id']!r} of an earlier cell (a copied cell?)"
        elif meta.get("grade") and not _is_number(meta.get("points", 0)):
            problem = "its points are not a number"
        if problem:
            del cell.metadata["nbgrader"]
            repairs.append(f"cell {index}: {problem}; it was graded as an ordinary cell")
        elif meta.get("grade_id"):
            seen.add(meta["grade_id"])
    return repairs


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def find_tampering(nb, locked_sources):
    """``[(kind, grade_id)]`` for locked cells (``{grade_id: source}`` from the release) that the
    student edited or deleted; nbgrader restores them before grading, this only records it."""
    present = {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str) and grade_id and grade_id not in present:
            present[grade_id] = cell.get("source", "")
    found = []
    for grade_id, source in locked_sources.items():
        if grade_id not in present:
            found.append(("deleted-cell", grade_id))
        elif present[grade_id].strip() != (source or "").strip():
            found.append(("edited-locked-cell", grade_id))
    return found


def release_notebook(course, assignment, notebook):
    """The release of ``notebook`` as students received it, or None."""
    path = course.path("release", assignment=assignment) / f"{notebook}.ipynb"
    return nbformat.read(path, as_version=4) if path.is_file() else None


def locked_sources(release_nb):
    """``{grade_id: source}`` of the locked cells of a release notebook."""
    if release_nb is None:
        return {}
    return {nbgrader_meta(c)["grade_id"]: c.source for c in release_nb.cells
            if nbgrader_meta(c).get("locked") and nbgrader_meta(c).get("grade_id")}


class _Sanitize(Autograde):
    """nbgrader's Autograde, stopped after its sanitize step."""

    def convert_single_notebook(self, notebook_filename):
        self._sanitizing = True
        self._init_preprocessors()
        BaseConverter.convert_single_notebook(self, notebook_filename)


def stage_submission(course, assignment, student, staging, record):
    """Copy ``submitted/<student>/<assignment>`` to ``staging/<student>/<assignment>`` safely, with each
    gradable notebook checked and repaired; record what could not be graded and why."""
    src = course.path("submitted", student, assignment)
    dest = Path(staging) / student / assignment
    if src.is_symlink() or course.path("submitted", student).is_symlink():
        record.skipped_files.append([f"{student}/{assignment}", "a symbolic link"])
        dest.mkdir(parents=True, exist_ok=True)
    else:
        record.skipped_files += copy_tree_safely(src, dest, skip_notebooks=True)
    for name in course.notebooks(assignment):
        rec = record.notebooks[name]
        path = src / f"{name}.ipynb"
        if not (path.is_file() or path.is_symlink()) or src.is_symlink():
            rec.status, rec.reason = MISSING, f"{name}.ipynb was not submitted"
            continue
        try:
            nb = read_submitted_notebook(path)
        except ValueError as error:
            rec.status, rec.reason = CORRUPT, f"{name}.ipynb is {error}; it scores 0"
            continue
        released = release_notebook(course, assignment, name)
        release_ids = [nbgrader_meta(c).get("grade_id") for c in released.cells] if released else []
        rec.repaired = repair_metadata(nb, release_ids)
        rec.tampered = [list(t) for t in find_tampering(nb, locked_sources(released))]
        rec.suspicious = scan_notebook(nb, [c.source for c in released.cells] if released else [])
        rec.status = GRADED  # so far: it goes on to be sanitized and run
        nbformat.write(nb, dest / path.name)


def record_all_zero(course, assignment, student):
    """A submission with no gradable notebook: every grade 0 (nbgrader skips a folder with no notebook)."""
    with course.gradebook() as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()
    folder = course.path("autograded", student, assignment)
    if folder.exists():
        shutil.rmtree(folder)


def sanitize(course, assignment, student, staging, notebook="*"):
    """Run nbgrader's sanitize step for one staged submission (or one of its notebooks); return what went
    wrong, in a line, on failure, else None."""
    config = course.config.copy()
    # nbgrader builds regular expressions from its folder names: keep the staging folder inside the course
    relative = os.path.relpath(staging, course.root)
    with temp_attrs(course.coursedir, assignment_id=assignment, student_id=student,
                    submitted_directory=relative, notebook_id=notebook):
        app = _Sanitize(coursedir=course.coursedir, config=config)
        app.force = True
        result = capture_log(app)
    if result["success"]:
        return None
    return nbgrader_failure(result)


def nbgrader_failure(result):
    """The useful line of a failed nbgrader app's log (``capture_log``'s result)."""
    lines = [line.strip() for line in (result.get("log") or "").splitlines() + (result.get("error") or "").splitlines()]
    useful = [line for line in lines if line and "Traceback" not in line and "see the the above traceback" not in line
              and not line.startswith(("File ", "^", "~"))]
    exceptions = [re.sub(r"^[\w.]*?(\w+(?:Error|Exception|Entry)): ", r"\1: ", line) for line in useful
                  if re.match(r"^[\w.]+(Error|Exception|Entry)\b: ", line) and "NbGraderException" not in line]
    errors = [line for line in useful if "Error" in line or "error" in line]
    return (exceptions or errors or useful or ["nbgrader failed"])[-1][:300]


def sanitize_submission(course, assignment, student, staging, record):
    """Sanitize a staged submission; a notebook nbgrader cannot process is left out (status ``failed``,
    scored 0 as missing) without costing the student's other notebooks."""
    failure = sanitize(course, assignment, student, staging)
    if not failure:
        return
    for name, rec in record.notebooks.items():
        if rec.status == GRADED:
            problem = sanitize(course, assignment, student, staging, notebook=name)
            if problem:
                rec.status, rec.reason = FAILED, f"nbgrader could not process {name}.ipynb ({problem}); it scores 0"
                (Path(staging) / student / assignment / f"{name}.ipynb").unlink()
    if not any(rec.status == GRADED for rec in record.notebooks.values()):
        record_all_zero(course, assignment, student)
        return
    failure = sanitize(course, assignment, student, staging)
    if failure:
        for rec in record.notebooks.values():
            if rec.status == GRADED:
                rec.status, rec.reason = FAILED, f"nbgrader could not process this submission ({failure}); it scores 0"
        record_all_zero(course, assignment, student)
