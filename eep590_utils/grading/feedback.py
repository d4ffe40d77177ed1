"""``eep590 feedback``: per-student HTML feedback (nbgrader ``generate_feedback``) that shows scores,
the student's own work and the visible tests' output, never a hidden test or a mark scheme.

Stock nbgrader 0.9.6 shows hidden tests in feedback, and even with them cleared a failing assert's
traceback prints the hidden lines. :class:`RedactHiddenTests` runs first: in a cell with hidden tests an
error keeps only ``ErrorName: message`` (hidden assertions carry messages that reveal no code), and
any output line anywhere that quotes a hidden line is dropped. nbgrader's ``ClearHiddenTests`` and
``ClearMarkScheme`` then clear the sources. ``nbgrader_config.py`` installs the same chain, so plain
``nbgrader generate_feedback`` is safe too.
"""
import html
import re

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, GetGrades
from nbgrader.preprocessors.base import NbGraderPreprocessor

from .course import CourseError

HIDDEN_BEGIN = re.compile(r"#+\s*BEGIN HIDDEN TESTS")
HIDDEN_END = re.compile(r"#+\s*END HIDDEN TESTS")
MIN_QUOTED = 8  # hidden lines shorter than this ("))", "else:") are too common to redact by
REDACTED = "[hidden test: details withheld]"


def hidden_lines(cell):
    """The stripped lines inside the cell's hidden-test regions."""
    lines, inside = [], False
    for line in cell.source.splitlines():
        if HIDDEN_BEGIN.search(line):
            inside = True
        elif HIDDEN_END.search(line):
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


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
        secrets = sorted({line for cell in nb.cells for line in hidden_lines(cell) if len(line) >= MIN_QUOTED})
        for cell in nb.cells:
            has_hidden = bool(hidden_lines(cell)) or any(HIDDEN_BEGIN.search(l) for l in cell.source.splitlines())
            if has_hidden:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
            if secrets:
                redact_outputs(cell, secrets)
        return nb, resources


FEEDBACK_PREPROCESSORS = [RedactHiddenTests, ClearHiddenTests, ClearMarkScheme, GetGrades, CSSHTMLHeaderPreprocessor]


def generate_feedback(course, assignment, student=None):
    """HTML feedback in ``feedback/<student>/<assignment>/`` for one student or all autograded ones;
    returns the HTML files written."""
    course.config.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
    result = course.api.generate_feedback(assignment, student_id=student, force=True)
    if not result["success"]:
        raise CourseError(f"nbgrader generate_feedback {assignment} failed:\n{result.get('error') or result.get('log')}")
    write_ungraded_notices(course, assignment, student)
    base = course.path("feedback")
    pattern = f"{student or '*'}/{assignment}/*.html"
    return sorted(base.glob(pattern))


NOTICE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{notebook}</title></head>
<body style="font-family:sans-serif;max-width:800px;margin:2em auto">
<h1>{assignment} / {notebook}</h1><p><b>Score: 0 / {max_score:g}</b></p>
<p>This notebook could not be graded: {reason}.</p>
<p>If you think this is a mistake, contact the course staff with the file you submitted.</p></body></html>"""


def write_ungraded_notices(course, assignment, student=None):
    """A feedback page for each notebook that was missing or could not be read (nbgrader makes none)."""
    from .autograde import load_records

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
