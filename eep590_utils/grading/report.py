"""``eep590 report``: the class report for TAs, ``reports/<hw>/index.html`` with PNG plots.

It shows the per-question score distributions, the most common failing tests and errors, the flagged
submissions (corrupt, timeouts, memory, crashes, tampered cells, suspicious code) and a table of every
student's scores. Hidden tests' code never appears in it: error messages are scrubbed of hidden lines.

Grades still waiting for a grader (written answers) are *pending*, never counted as 0: the report shows
per student and per question what is pending and who can grade it, and a grading queue per question
with a link into formgrader for every answer (``EEP590_FORMGRADER_URL``, default
``http://localhost:8888``, is where the TAs' Jupyter server with formgrader runs). A class graded
without a sandbox says so once, at the top. ``similarity.html`` beside the report is linked when present.
"""
import collections
import datetime
import html
import os
import statistics
import urllib.parse
from pathlib import Path

from . import cells, gradebook
from .cells import REDACTED
from .records import load_records

TOP_FAILURES = 20
FORMGRADER_URL = "http://localhost:8888"  # default for EEP590_FORMGRADER_URL
NOT_ATTEMPTED = ("NotImplementedError",)  # the release's stubs raise it


def _figure(**kwargs):
    """An off-screen matplotlib ``Figure`` (no pyplot: no global state, a lighter import), imported when a
    figure is drawn, not when the report is imported."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def score_rows(course, assignment):
    """One dict per (student, notebook, graded cell) from the gradebook, sorted. The 0-point question
    cells of written answers (they carry the mark scheme, not points) are left out; ``needs_manual_grade``
    (alias ``pending``) marks a grade still waiting for a grader (its ``score`` is not final)."""
    gradebook.settle_question_cells(course, assignment)
    rows = []
    for grade in gradebook.grades(course, assignment):
        if grade["cell_kind"] == "TaskCell" and not grade["max_score"]:
            continue
        rows.append({
            "student": grade["student"],
            "notebook": grade["notebook"],
            "grade_id": grade["grade_id"],
            "kind": "manual" if grade["cell_type"] == "markdown" or grade["auto_score"] is None else "auto",
            "score": grade["score"],
            "max_score": grade["max_score"],
            "needs_manual_grade": grade["needs_manual_grade"],
            "pending": grade["needs_manual_grade"],
            "submission_notebook_id": grade["submission_notebook_id"],
            "flagged": grade["flagged"],
        })
    order = _question_order(course, assignment)
    return sorted(rows, key=lambda r: (r["student"], r["notebook"], order.get((r["notebook"], r["grade_id"]), 10**6), r["grade_id"]))


def _question_order(course, assignment):
    """``{(notebook, grade_id): position}``: questions in the order the notebooks ask them."""
    order = {}
    for path in sorted(course.path("source", assignment=assignment).glob("*.ipynb")):
        for index, cell in enumerate(cells.read_cells(path)):
            grade_id = cells.grade_id(cell)
            if grade_id:
                order[(path.stem, grade_id)] = index
    return order


def _secrets(course, assignment):
    paths = course.path("source", assignment=assignment).glob("*.ipynb")
    return set().union(*(cells.quoted_secrets(cells.read_cells(path), course.config) for path in paths))


def common_failures(course, assignment, students):
    """``[(count, notebook, grade_id, error)]``, most common first: test cells that raised, by error
    (a stub left unanswered, ``NotImplementedError``, is not counted)."""
    secrets = _secrets(course, assignment)
    counter = collections.Counter()
    for student in students:
        folder = course.path("autograded", student, assignment)
        for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
            try:
                notebook_cells = cells.read_cells(path)
            except ValueError:
                continue  # an autograded copy that is not a notebook: the student's flags say why
            for cell in notebook_cells:
                if not (cells.is_grade(cell) and cell.get("cell_type") == "code"):
                    continue
                for output in cell.get("outputs", []):
                    if output.get("output_type") != "error":
                        continue
                    evalue = (output.get("evalue") or "").strip().splitlines()
                    message = evalue[0][:160] if evalue else ""
                    if any(secret in message for secret in secrets):
                        message = REDACTED
                    if output.get("ename") in NOT_ATTEMPTED:
                        break  # the stub was left as handed out: counted apart, not a failure worth a TA's look
                    counter[(path.stem, cells.grade_id(cell), f"{output.get('ename')}: {message}".rstrip(": "))] += 1
                    break
    return [(count, *key) for key, count in counter.most_common(TOP_FAILURES)]


def by_question(rows, notebook):
    """``{grade_id: [row, ...]}`` of one notebook's rows, questions in the order the rows give them."""
    found = {}
    for r in rows:
        if r["notebook"] == notebook:
            found.setdefault(r["grade_id"], []).append(r)
    return found


def _question_figure(questions, notebook, path):
    """Stacked bars per question (``{grade_id: rows}``): share of students with full, partial and no credit
    (and ungraded)."""
    full, partial, zero, pending = [], [], [], []
    for answers in questions.values():
        n = len(answers)
        pending.append(sum(r["needs_manual_grade"] for r in answers) / n)
        graded = [r for r in answers if not r["needs_manual_grade"]]
        full.append(sum(r["score"] >= r["max_score"] > 0 for r in graded) / n)
        zero.append(sum(r["score"] <= 0 for r in graded) / n)
        partial.append(1 - full[-1] - zero[-1] - pending[-1])
    height = max(3.0, 0.32 * len(questions) + 1.8)
    fig = _figure(figsize=(8, height))
    ax = fig.subplots()
    left = [0.0] * len(questions)
    for values, label, color in ((full, "full credit", "#2e7d32"), (partial, "partial", "#f9a825"),
                                 (zero, "no credit", "#c62828"), (pending, "awaiting manual grading", "#9e9e9e")):
        ax.barh(list(questions), values, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of students")
    ax.set_title(f"{notebook}: score distribution per question")
    ax.legend(loc="upper center", bbox_to_anchor=(0.4, -0.45 / height * 2.5), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _total_figure(totals, max_total, path):
    fig = _figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.hist(list(totals.values()), bins=min(20, max(5, len(totals))), range=(0, max_total), color="#1565c0")
    ax.set_xlabel(f"total score (of {max_total:g})")
    ax.set_ylabel("students")
    ax.set_title("Total scores")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def flag_details(record):
    """Human-readable lines explaining a student's flags."""
    lines = []
    for rec in record.notebooks.values():
        if rec.status != "graded":
            lines.append(f"{rec.notebook}: {rec.reason}")
        lines += [f"{rec.notebook}: {message}" for kind, message in rec.problems if kind != "not-run"]
        not_run = sum(kind == "not-run" for kind, _ in rec.problems)
        if not_run:
            lines.append(f"{rec.notebook}: {not_run} cell(s) not run")
        lines += [f"{rec.notebook}: {kind} {grade_id} (restored from the gradebook before grading)"
                  for kind, grade_id in rec.tampered]
        lines += [f"{rec.notebook} cell {s['cell']} line {s['line']}: {s['reason']}: {s['code']}" for s in rec.suspicious]
    return lines


def kit_flags(record):
    """A record's flags, without the class-wide "unsandboxed" warning (said once at the top)."""
    return [kind for kind in record.flags if kind != "unsandboxed"]


def formgrader_link(row, base=None):
    """Formgrader's page of one submitted notebook, scrolled to the cell ``row['grade_id']``."""
    base = (base or os.environ.get("EEP590_FORMGRADER_URL") or FORMGRADER_URL).rstrip("/")
    return f"{base}/formgrader/submissions/{urllib.parse.quote(row['submission_notebook_id'])}/#{urllib.parse.quote(row['grade_id'])}"


def who_grades(row):
    """Who can resolve a pending grade, in words."""
    if row["kind"] == "manual":
        return "any grader, in formgrader (score box under the answer, rubric just above it)"
    return "a grader, in formgrader: the autograder's score was overridden or could not be computed"


def pending_rows(rows):
    return [r for r in rows if r["needs_manual_grade"]]


def grading_queue(rows):
    """``{(notebook, grade_id): [row, ...]}`` of pending grades, in the order the notebooks ask them."""
    queue = {}
    for r in pending_rows(rows):
        queue.setdefault((r["notebook"], r["grade_id"]), []).append(r)
    return queue


def student_summary(course, assignment, rows=None):
    """``(notebooks, {student: {notebook: (score, max)}})`` from the gradebook (pending grades count as
    their current score, 0 for an answer nobody graded yet: see :func:`pending_summary`)."""
    rows = score_rows(course, assignment) if rows is None else rows
    notebooks = sorted({r["notebook"] for r in rows})
    table = collections.defaultdict(dict)
    for r in rows:
        score, maximum = table[r["student"]].get(r["notebook"], (0.0, 0.0))
        table[r["student"]][r["notebook"]] = (score + r["score"], maximum + r["max_score"])
    return notebooks, dict(table)


def pending_summary(rows):
    """``{student: {notebook: (points, cells)}}`` still awaiting a grader."""
    table = collections.defaultdict(dict)
    for r in pending_rows(rows):
        points, count = table[r["student"]].get(r["notebook"], (0.0, 0))
        table[r["student"]][r["notebook"]] = (points + r["max_score"], count + 1)
    return dict(table)


def _score_text(score, maximum, pending, sep=" / "):
    text = f"{score:g}{sep}{maximum:g}"
    return text + (f" (+{pending[0]:g} pending)" if pending and pending[0] else "")


def write_report(course, assignment, rows=None):
    """Write ``reports/<assignment>/index.html`` and its PNGs; return the HTML path (``rows``: the
    :func:`score_rows` when the caller has them)."""
    out = course.reports_dir / assignment
    out.mkdir(parents=True, exist_ok=True)
    rows = score_rows(course, assignment) if rows is None else rows
    if not rows:
        raise ValueError(f"no graded submissions of {assignment} in the gradebook: run `eep590 autograde {assignment}` first")
    records = load_records(course, assignment)
    notebooks, table = student_summary(course, assignment, rows)
    pending = pending_summary(rows)
    students = sorted(table)
    totals = {s: sum(score for score, _ in table[s].values()) for s in students}
    max_total = sum(maximum for _, maximum in next(iter(table.values())).values())

    _total_figure(totals, max_total, out / "total_scores.png")
    parts = [f"<h1>{html.escape(assignment)}: class report</h1>",
             f"<p>{len(students)} submissions; generated {datetime.datetime.now():%Y-%m-%d %H:%M}.</p>"]
    unsandboxed = sorted(s for s, r in records.items() if not r.sandboxed)
    if unsandboxed:
        who = "This class was" if len(unsandboxed) == len(records) else f"{len(unsandboxed)} submission(s) ({', '.join(unsandboxed)}) were"
        parts.append(f"<p class='warn'>{html.escape(who)} graded WITHOUT a sandbox (bubblewrap missing or disabled): "
                     "student code could read the course directory and reach the network.</p>")
    queue = grading_queue(rows)
    if queue:
        points = sum(r["max_score"] for answers in queue.values() for r in answers)
        count = sum(len(answers) for answers in queue.values())
        parts.append(f"<p class='pending'>{count} grade(s) worth {points:g} point(s) await manual grading "
                     f"(<a href='#queue'>grading queue</a>); totals below do not include them, and "
                     "<code>eep590 export</code> refuses to export them until they are graded.</p>")
    else:
        parts.append("<p>Every grade is final: nothing awaits manual grading.</p>")
    if (out / "similarity.html").is_file():
        parts.append("<p>Answers that look alike: <a href='similarity.html'>similarity report</a>.</p>")
    values = list(totals.values())
    so_far = "<p>Scores so far: grades awaiting manual grading are not counted.</p>" if queue else ""
    parts.append("<h2>Total scores</h2>" + so_far + _table(
        ["mean", "median", "min", "max", "out of"],
        [[f"{statistics.mean(values):.1f}", f"{statistics.median(values):.1f}", f"{min(values):g}", f"{max(values):g}", f"{max_total:g}"]]))
    parts.append("<img src='total_scores.png' alt='histogram of total scores'>")

    parts.append("<h2>Per-question score distributions</h2>")
    for notebook in notebooks:
        image = f"questions_{notebook}.png"
        questions = by_question(rows, notebook)
        _question_figure(questions, notebook, out / image)
        stats = []
        for question, answers in questions.items():
            graded = [r for r in answers if not r["needs_manual_grade"]]
            stats.append([question, answers[0]["kind"], f"{answers[0]['max_score']:g}",
                          f"{statistics.mean(r['score'] for r in graded):.2f}" if graded else "-",
                          f"{100 * sum(r['score'] >= r['max_score'] > 0 for r in graded) / len(graded):.0f}%" if graded else "-",
                          sum(r["needs_manual_grade"] for r in answers)])
        parts.append(f"<h3>{html.escape(notebook)}</h3><img src='{image}' alt='score distribution per question'>")
        parts.append(_table(["question", "graded", "points", "mean (graded)", "full credit (graded)",
                             "awaiting manual grading"], stats))

    parts.append("<h2 id='queue'>Grading queue</h2>")
    if queue:
        parts.append("<p>Answers awaiting a grader, per question. Each link opens the student's notebook in formgrader "
                     "at the answer (rubric just above it); enter the score and a comment there (the comment reaches "
                     "the student's feedback). Then rerun <code>eep590 feedback</code> and <code>eep590 report</code>.</p>")
        for (notebook, question), answers in queue.items():
            links = ", ".join(f"<a href='{html.escape(formgrader_link(r))}'>{html.escape(r['student'])}</a>" for r in answers)
            parts.append(f"<h3>{html.escape(notebook)} / {html.escape(question)} ({answers[0]['max_score']:g} points): "
                         f"{len(answers)} to grade</h3><p>by {html.escape(who_grades(answers[0]))}: {links}</p>")
    else:
        parts.append("<p>Nothing to grade.</p>")

    failures = common_failures(course, assignment, students)
    parts.append("<h2>Most common failures</h2><p>Failing tests by error, most frequent first (unanswered "
                 "stubs, NotImplementedError, left out).</p>" + (_table(["students", "notebook", "test", "error"], failures)
                                                                 if failures else "<p>No test failed.</p>"))

    flagged = [(s, ", ".join(kit_flags(records[s])), "; ".join(flag_details(records[s])))
               for s in students if s in records and kit_flags(records[s])]
    parts.append("<h2>Flagged submissions</h2>" + (_table(["student", "flags", "details"], flagged)
                                                    if flagged else "<p>None.</p>"))

    per_student = []
    for s in students:
        mine = pending.get(s, {})
        todo = "; ".join(f"{n}: {c} answer(s), {p:g} point(s)" for n, (p, c) in sorted(mine.items()))
        per_student.append([s] + [_score_text(*table[s][n], mine.get(n)) for n in notebooks]
                           + [_score_text(totals[s], max_total, (sum(p for p, _ in mine.values()), 0)),
                              todo or "-", ", ".join(kit_flags(records[s])) if s in records else ""])
    parts.append("<h2>Students</h2><p>Scores so far; <i>pending</i> points await manual grading.</p>"
                 + _table(["student", *notebooks, "total", "awaiting manual grading", "flags"], per_student))
    style = ("<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}.warn{color:#c62828;font-weight:bold}"
             ".pending{color:#6d4c41;font-weight:bold}</style>")
    parts.append("<p>Grades for the LMS gradebook: <a href='grades.csv'>grades.csv</a>"
                 + (" (pending grades read PENDING: not ready for the LMS yet)" if queue else "") + ".</p>")
    path = out / "index.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)} report</title>"
                    f"{style}</head><body>{''.join(parts)}</body></html>")
    return path


def _text_table(header, lines, right_aligned_from=None):
    """Rows of text in columns; columns from ``right_aligned_from`` on are right-aligned."""
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
    first = len(header) if right_aligned_from is None else right_aligned_from
    fmt = "  ".join(f"{{:{'<' if i < first else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*row) for row in [header] + lines)


def summary_text(course, assignment, rows=None):
    """A plain-text table, one row per student: score per notebook, total, flags."""
    rows = score_rows(course, assignment) if rows is None else rows
    notebooks, table = student_summary(course, assignment, rows)
    pending = pending_summary(rows)
    records = load_records(course, assignment)
    header = ["student", *notebooks, "total", "pending", "flags"]
    lines = []
    for student in sorted(table):
        mine = pending.get(student, {})
        scores = [_score_text(*table[student][n], mine.get(n), sep="/") for n in notebooks]
        total = sum(s for s, _ in table[student].values())
        maximum = sum(m for _, m in table[student].values())
        points = sum(p for p, _ in mine.values())
        flags = ", ".join(kit_flags(records[student])) if student in records else ""
        lines.append([student, *scores, f"{total:g}/{maximum:g}", f"{points:g} pts" if points else "-", flags])
    text = _text_table(header, lines)
    if any(not r.sandboxed for r in records.values()):
        text = "graded WITHOUT a sandbox (bubblewrap missing or disabled)\n" + text
    if pending:
        text += ("\n(+p pending) and 'pending': points awaiting manual grading in formgrader, not yet in the scores; "
                 "`eep590 report` lists them")
    return text


def question_text(course, assignment, notebook, rows=None):
    """A plain-text table of one notebook: one row per graded cell, one column per student."""
    rows = [r for r in (score_rows(course, assignment) if rows is None else rows) if r["notebook"] == notebook]
    questions = list(dict.fromkeys(r["grade_id"] for r in rows))
    students = sorted({r["student"] for r in rows})
    score = {(r["student"], r["grade_id"]): r for r in rows}
    header = ["question", "points", *students]
    lines = [[q, f"{score[(students[0], q)]['max_score']:g}"]
             + [("?" if score[(s, q)]["needs_manual_grade"] else f"{score[(s, q)]['score']:g}") for s in students]
             for q in questions]
    return _text_table(header, lines, right_aligned_from=1)


__all__ = ["write_report", "summary_text", "question_text", "score_rows", "common_failures", "grading_queue",
           "pending_summary", "formgrader_link", "Path"]
