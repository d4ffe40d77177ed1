"""``eep590 feedback``: per-student HTML feedback (nbgrader ``generate_feedback``) that shows scores,
the student's own work and the visible tests' output, never a hidden test or a mark scheme.

Stock nbgrader 0.9.6 shows hidden tests in feedback, and even with them cleared a failing assert's
traceback prints the hidden lines. :class:`RedactHiddenTests` runs first: in a cell with hidden tests an
error keeps only ``ErrorName: message`` (hidden assertions carry messages that reveal no code), and
any output line anywhere that quotes a hidden line is dropped. nbgrader's ``ClearHiddenTests`` and
``ClearMarkScheme`` then clear the sources. ``nbgrader_config.py`` installs the same chain, so plain
``nbgrader generate_feedback`` is safe too.

Written answers (``docs/authoring.md``): an answer still waiting for a grader is *not graded yet*, never
0. :class:`MarkPending` (after ``GetGrades``) gives such a cell no score (it reads "not graded yet") and a
note below it; the notebook's heading says how many points are still to grade. The 0-point question
cells that carry the mark scheme lose their task marking, so they read as the question, with no score.
Graders' comments (formgrader's comment box under an answer) appear under the answer.
"""
import html
import re

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, GetGrades
from nbgrader.preprocessors.base import NbGraderPreprocessor

from . import cells
from .cells import REDACTED
from .course import CourseError


def _scrub(text, secrets):
    kept = [line for line in text.splitlines(keepends=True) if not any(s in line for s in secrets)]
    return "".join(kept)


def redact_outputs(cell, secrets):
    """Drop every output line that quotes a secret line (in place)."""
    for output in cell.get("outputs", []):
        if "text" in output:
            text = output["text"] if isinstance(output["text"], str) else "".join(output["text"])
            output["text"] = _scrub(text, secrets)
        for mime, value in list(output.get("data", {}).items()):
            if isinstance(value, str) and mime.startswith("text/"):
                output["data"][mime] = _scrub(value, secrets)
        if output.get("output_type") == "error":
            output["traceback"] = [line for line in output.get("traceback", []) if not any(s in line for s in secrets)]
            if any(s in output.get("evalue", "") for s in secrets):
                output["evalue"] = REDACTED


class RedactHiddenTests(NbGraderPreprocessor):
    """Remove every trace of hidden tests from outputs before nbgrader clears their sources."""

    def preprocess(self, nb, resources):
        secrets = sorted(cells.quoted_secrets(nb.cells, self.config))
        for cell in nb.cells:
            has_hidden = cells.has_region(cell.source, "hidden test", self.config)
            if has_hidden:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
            if secrets:
                redact_outputs(cell, secrets)
        return nb, resources


NOT_GRADED = "not graded yet"
PENDING_NOTE = ("**Not graded yet.** A member of the course staff will grade this answer; the scores on this page "
                "do not count it yet.")
_PENDING_SCORE = re.compile(r"Score: nan / ")
_HEADING_SCORE = re.compile(r"\(Score: ([0-9.]+) / ([0-9.]+)\)</h4>")


class MarkPending(NbGraderPreprocessor):
    """After ``GetGrades``: answers awaiting a grader show "not graded yet" instead of a score, with a note;
    0-point question cells (the mark scheme's carriers) render as plain text, without a score."""

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        pending = {}
        try:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                pending = {g.name: g.max_score for g in notebook.grades if g.needs_manual_grade and g.max_score}
        except (KeyError, MissingEntry):
            pass
        kept = []
        for cell in nb.cells:
            meta = cells.nbgrader_meta(cell)
            kept.append(cell)
            if cells.is_question(cell):
                meta["task"] = False  # the question of a written answer: no score box, no "Student's task" label
            elif cells.grade_id(cell) in pending and (cells.is_grade(cell) or cells.is_task(cell)):
                meta["score"] = float("nan")  # rendered "nan" by nbgrader's template, "not graded yet" after cleanup
                kept.append(new_markdown_cell(PENDING_NOTE))
        nb.cells = kept
        resources["nbgrader"]["pending_points"] = sum(pending.values())
        resources["nbgrader"]["pending_cells"] = len(pending)
        return nb, resources


FEEDBACK_PREPROCESSORS = [RedactHiddenTests, ClearHiddenTests, ClearMarkScheme, GetGrades, MarkPending,
                          CSSHTMLHeaderPreprocessor]


def pending_by_notebook(course, assignment, student):
    """``{notebook: (points, cells)}`` still awaiting a grader for one student."""
    found = {}
    with course.gradebook() as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return found
        for notebook in submission.notebooks:
            grades = [g for g in notebook.grades if g.needs_manual_grade and g.max_score]
            if grades:
                found[notebook.name] = (sum(g.max_score for g in grades), len(grades))
    return found


def mark_pending_in_html(path, pending):
    """Rewrite one feedback page: "Score: nan" -> "Score: not graded yet"; the heading's score becomes
    "Score so far: a / b; p points not graded yet" when ``pending`` ``(points, cells)`` is not empty."""
    text = path.read_text()
    new = _PENDING_SCORE.sub(f"Score: {NOT_GRADED} / ", text)
    if pending and pending[0]:
        points, cells = pending
        new = _HEADING_SCORE.sub(lambda m: f"(Score so far: {m.group(1)} / {m.group(2)}; {points:g} point(s) in "
                                           f"{cells} answer(s) {NOT_GRADED})</h4>", new, count=1)
    if new != text:
        path.write_text(new)


def generate_feedback(course, assignment, student=None):
    """HTML feedback in ``feedback/<student>/<assignment>/`` for one student or all autograded ones;
    returns the HTML files written."""
    autograded = course.path("autograded")
    if not any(autograded.glob(f"{student or '*'}/{assignment}/*.ipynb")):
        who = f"{student}'s " if student else ""
        raise CourseError(f"no autograded notebooks of {who}{assignment} in {autograded}: run `eep590 autograde {assignment}` first")
    course.config.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
    result = course.api.generate_feedback(assignment, student_id=student, force=True)
    if not result["success"]:
        raise CourseError(f"nbgrader generate_feedback {assignment} failed:\n{result.get('error') or result.get('log')}")
    write_ungraded_notices(course, assignment, student)
    base = course.path("feedback")
    pattern = f"{student or '*'}/{assignment}/*.html"
    files = sorted(base.glob(pattern))
    pending = {}
    for path in files:
        name = path.parts[-3]
        if name not in pending:
            pending[name] = pending_by_notebook(course, assignment, name)
        mark_pending_in_html(path, pending[name].get(path.stem))
    return files


NOTICE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{notebook}</title></head>
<body style="font-family:sans-serif;max-width:800px;margin:2em auto">
<h1>{assignment} / {notebook}</h1><p><b>Score: 0 / {max_score:g}</b></p>
<p>This notebook could not be graded: {reason}.</p>
<p>If you think this is a mistake, contact the course staff with the file you submitted.</p></body></html>"""


def write_ungraded_notices(course, assignment, student=None):
    """A feedback page for each notebook that was missing or could not be read (nbgrader makes none)."""
    from .records import load_records

    with course.gradebook() as gb:
        maxima = {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}
    for name, record in load_records(course, assignment).items():
        if student and name != student:
            continue
        for rec in record.notebooks.values():
            if rec.status in ("missing", "corrupt", "failed"):
                folder = course.path("feedback", name, assignment)
                folder.mkdir(parents=True, exist_ok=True)
                reason = html.escape(rec.reason.rstrip(".").replace("; it scores 0", ""))
                (folder / f"{rec.notebook}.html").write_text(NOTICE.format(
                    assignment=html.escape(assignment), notebook=html.escape(rec.notebook),
                    max_score=maxima.get(rec.notebook, 0), reason=reason))
