"""``eep590 similarity``: which answers to a question look alike, so that a TA knows where to look.

Every answer (a solution cell, code or written, found by its ``grade_id``) is normalised and fingerprinted
once with ``copydetect`` (winnowing over k-grams; in code, names become ``V``, strings ``S``, and comments
and whitespace go; in text, case, punctuation and whitespace go). The k-grams of the release's starter cell
are removed, so that the starter code, a stub left in place or a blank answer never counts as shared, and so
are the instructor's solution's: two answers close to the reference are alike because of the reference.
Pairs are then scored from an inverted index of fingerprints (one sparse product per question, not one text
diff per pair), and only the pairs above the threshold are compared in detail to highlight what they share.

What it does not report as pairs, but lists on its own: blank or minimal answers (too few fingerprints left
once the starter is removed) and answers equal or close to the instructor's solution (too few fingerprints
left once the reference's are removed too; several students writing the reference solution is normal, so
it is shown per question, not as a pair).

The page shows similarity, not misconduct: short questions, common idioms and allowed collaboration all make
answers alike. It is written to ``reports/<hw>/similarity.html``, with ``similarity.csv`` and one histogram
per question of every pairwise score, so that a TA sees what is normal for that question.
"""
import copy
import csv
import html
import io
import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

CODE_K, CODE_WINDOW = 12, 4        # k-gram length (normalised characters) and winnowing window, for code
TEXT_K, TEXT_WINDOW = 20, 4        # the same for written answers (letters and digits only)
THRESHOLD = 0.5                    # pairs whose score is at least this are listed (renamed + reordered: ~0.7)
MIN_FINGERPRINTS = 4               # fewer fingerprints than this once the starter is gone: blank or minimal
COMMON_FRACTION = 0.5              # fingerprints in more than this share of a question's answers are ignored ...
COMMON_MIN_ANSWERS = 20            # ... once it has at least this many answers (idioms everybody writes)
TOP_PAIRS = 20                     # pairs shown side by side per question (the CSV has all above the threshold)
MARKERS = re.compile(r"^[ \t]*#*[ \t]*(=+[ \t]*)?(BEGIN|END) (SOLUTION|MARK SCHEME)\b.*$", re.M)
NOTICE = ("This page shows how similar answers are, not misconduct. Short questions, common idioms, the "
          "starter code, the course material and allowed collaboration all make answers alike. Use it to decide "
          "what to read closely, and talk with the students before concluding anything.")


@dataclass
class Question:
    """One answer cell of an assignment: its notebook, ``grade_id``, kind, starter (release) and solution (source)."""
    notebook: str
    grade_id: str
    kind: str                      # "code" or "markdown"
    starter: str = ""
    reference: str = ""


@dataclass
class QuestionResult:
    """What one question's comparison found; plain data, so that it can come back from a worker process."""
    question: Question
    compared: list = field(default_factory=list)      # students whose answers were paired
    blank: list = field(default_factory=list)         # blank or minimal answers
    reference: list = field(default_factory=list)     # answers equal or close to the reference solution
    scores: object = None                             # every pair's score (1-D array) for the histogram
    pairs: list = field(default_factory=list)         # dicts, best first, score >= threshold


def _source_text(source):
    """A cell's source as text, or None when it is neither a string nor a list of strings."""
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return None


def solution_cells(nb, where):
    """``({grade_id: (cell_type, text)}, problems)`` of a notebook's solution cells (parsed JSON).

    Anything malformed (metadata.nbgrader not a dict, a grade_id that is not a string, a source that is
    not text, a repeated grade_id) is left out and described in ``problems``, never raised."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return {}, [f"{where}: not a notebook (no list of cells)"]
    found, problems = {}, []
    for number, cell in enumerate(nb["cells"], 1):
        metadata = cell.get("metadata") if isinstance(cell, dict) else None
        meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
        if meta is None:
            continue
        if not isinstance(meta, dict):
            problems.append(f"{where}, cell {number}: metadata.nbgrader is not a dictionary; cell skipped")
            continue
        if meta.get("solution") is not True:
            continue
        grade_id, text = meta.get("grade_id"), _source_text(cell.get("source"))
        if not isinstance(grade_id, str) or not grade_id:
            problems.append(f"{where}, cell {number}: grade_id is {type(grade_id).__name__}, not a name; cell skipped")
        elif text is None:
            problems.append(f"{where}, cell {number} ({grade_id}): source is not text; cell skipped")
        elif grade_id in found:
            problems.append(f"{where}, cell {number}: grade_id {grade_id!r} repeated; the first one is used")
        else:
            found[grade_id] = (cell.get("cell_type"), text)
    return found, problems


def _read_notebook(path):
    """The notebook at ``path`` as parsed JSON, or ``(None, reason)``."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle), None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        return None, f"{type(error).__name__}: {str(error)[:200]}"


def questions(course, assignment):
    """The answer cells of ``assignment``, from ``source/`` (solution) and ``release/`` (starter), in order."""
    found = []
    for notebook in course.notebooks(assignment):
        source, _ = _read_notebook(course.path("source", assignment=assignment) / f"{notebook}.ipynb")
        release, _ = _read_notebook(course.path("release", assignment=assignment) / f"{notebook}.ipynb")
        solutions, _ = solution_cells(source, notebook)
        starters, _ = solution_cells(release, notebook) if release is not None else ({}, [])
        for grade_id, (cell_type, text) in solutions.items():
            kind = "markdown" if cell_type == "markdown" else "code"
            starter = starters.get(grade_id, (None, "YOUR ANSWER HERE" if kind == "markdown" else ""))[1]
            found.append(Question(notebook, grade_id, kind, starter=starter, reference=MARKERS.sub("", text)))
    return found


def read_answers(course, assignment, question_list):
    """``({(notebook, grade_id): {student: text}}, problems)`` from ``submitted/<student>/<hw>/``."""
    answers = {(q.notebook, q.grade_id): {} for q in question_list}
    problems = []
    for student in course.submitted_students(assignment):
        for notebook in sorted({q.notebook for q in question_list}):
            path = course.path("submitted", student, assignment) / f"{notebook}.ipynb"
            if not path.is_file():
                continue
            where = f"{student}/{notebook}.ipynb"
            nb, error = _read_notebook(path)
            if nb is None:
                problems.append(f"{where}: unreadable ({error}); notebook skipped")
                continue
            cells, cell_problems = solution_cells(nb, where)
            problems += cell_problems
            for grade_id, (_, text) in cells.items():
                if (notebook, grade_id) in answers:
                    answers[(notebook, grade_id)][student] = text
    return answers, problems


def normalise_text(text):
    """Written answers: ``(letters and digits in lower case, offsets)`` where the offsets map each kept
    character back to the original text, in copydetect's format (``[index, characters removed before]``)."""
    kept = [(i, ch.lower()) for i, ch in enumerate(text) if ch.isalnum()]
    filtered = "".join(ch for _, ch in kept)
    offsets = [[j, i - j] for j, (i, _) in enumerate(kept)] + [[len(kept), len(text) - len(kept)]]
    return filtered, np.array(offsets, dtype=np.int64)


def fingerprint(text, kind, boilerplate=None):
    """A ``copydetect.CodeFingerprint`` of one answer, the starter's k-grams (``boilerplate``) removed."""
    if kind == "markdown":
        filtered, offsets = normalise_text(text)
        fp = CodeFingerprint("answer.txt", TEXT_K, TEXT_WINDOW, boilerplate, filter=False, fp=io.StringIO(filtered))
        fp.raw_code, fp.offsets = text, offsets
    else:
        fp = CodeFingerprint("answer.py", CODE_K, CODE_WINDOW, boilerplate, filter=True, language="python",
                             fp=io.StringIO(text))
    if boilerplate is not None:                          # copydetect keeps repeats of a boilerplate hash
        remove_hashes(fp, boilerplate)
    return fp


def remove_hashes(fp, hashes):
    """Drop ``hashes`` from a fingerprint (its set and its positions), in place."""
    hashes = set(np.asarray(hashes).tolist())
    for h in fp.hashes & hashes:
        fp.hash_idx.pop(h, None)
    fp.hashes -= hashes


def all_hashes(text, kind):
    """Every k-gram hash of the starter (not only the winnowed ones), as copydetect does for boilerplate."""
    if kind == "markdown":
        filtered, _ = normalise_text(text)
        fp = CodeFingerprint("starter.txt", TEXT_K, 1, filter=False, fp=io.StringIO(filtered))
    else:
        fp = CodeFingerprint("starter.py", CODE_K, 1, filter=True, language="python", fp=io.StringIO(text))
    return np.unique(np.array(sorted(fp.hashes), dtype=np.int64))


def shared_fingerprints(hash_sets, common_limit=None, chunk=4096):
    """``(shared, sizes)``: ``shared[i, j]`` the number of fingerprints answers i and j have in common and
    ``sizes[i]`` answer i's fingerprints, both without those held by more than ``common_limit`` answers.

    One inverted index over all answers; fingerprints held by a single answer are dropped before the
    (chunked) product, so the cost follows what is actually shared, not the number of pairs."""
    n = len(hash_sets)
    column, rows, cols = {}, [], []
    for i, hashes in enumerate(hash_sets):
        for h in hashes:
            rows.append(i)
            cols.append(column.setdefault(h, len(column)))
    rows, cols = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    holders = np.bincount(cols, minlength=len(column))
    common = holders > common_limit if common_limit else np.zeros(len(column), dtype=bool)
    sizes = np.bincount(rows[~common[cols]], minlength=n).astype(np.float64)
    keep = (holders >= 2) & ~common
    index = np.full(len(column), -1, dtype=np.int64)
    index[keep] = np.arange(int(keep.sum()))
    mask = keep[cols]
    rows, cols = rows[mask], index[cols[mask]]
    shared = np.zeros((n, n), dtype=np.float32)
    for start in range(0, int(keep.sum()), chunk):
        part = (cols >= start) & (cols < start + chunk)
        matrix = np.zeros((n, min(chunk, int(keep.sum()) - start)), dtype=np.float32)
        matrix[rows[part], cols[part] - start] = 1.0
        shared += matrix @ matrix.T
    return shared, sizes


def _highlight(fp, slices):
    """The answer's original text, HTML-escaped, with the shared regions in ``<mark>``."""
    if len(slices) == 0 or np.asarray(slices).size == 0:
        return html.escape(fp.raw_code)
    slices = np.clip(np.asarray(slices, dtype=np.int64), 0, len(fp.raw_code))
    marked, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", escape_html=True)
    return marked


def compare_question(question, answers, threshold=THRESHOLD, top=TOP_PAIRS):
    """Score every pair of ``answers`` (``{student: text}``) to one question; detail the best pairs.

    Only an answer's own fingerprints count: not the starter's k-grams, nor the reference solution's (two
    answers close to the reference are alike because of it, which says nothing about the two students).
    A pair's score is the larger of the two shares of an answer's own fingerprints found in the other (so
    an answer copied into a longer one still shows); both shares are given, and how much of each answer
    (starter removed) is in the reference."""
    result = QuestionResult(question)
    boilerplate = all_hashes(question.starter, question.kind)
    reference = set(all_hashes(question.reference, question.kind).tolist())
    prints, like_reference, seen = {}, {}, {}
    for student in sorted(answers):
        text = answers[student]
        if text not in seen:                                 # identical answers are fingerprinted once
            seen[text] = fingerprint(text, question.kind, boilerplate)
        fp = copy.copy(seen[text])
        fp.hashes, fp.hash_idx = set(fp.hashes), dict(fp.hash_idx)
        if len(fp.hashes) < MIN_FINGERPRINTS:
            result.blank.append(student)
            continue
        like_reference[student] = len(fp.hashes & reference) / len(fp.hashes)
        remove_hashes(fp, list(reference))
        if len(fp.hashes) < MIN_FINGERPRINTS:
            result.reference.append(student)
        else:
            prints[student] = fp
    students = list(prints)
    result.compared = students
    n = len(students)
    limit = int(COMMON_FRACTION * n) if n >= COMMON_MIN_ANSWERS else None
    shared, sizes = shared_fingerprints([prints[s].hashes for s in students], limit)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.nan_to_num(shared / sizes[:, None])          # share[i, j]: of i's fingerprints, in j
    score = np.maximum(share, share.T)
    upper = np.triu_indices(n, k=1)
    result.scores = score[upper].astype(np.float32)
    order = np.argsort(-result.scores, kind="stable")
    for rank, k in enumerate(order):
        if result.scores[k] < threshold:
            break
        i, j = int(upper[0][k]), int(upper[1][k])
        a, b = prints[students[i]], prints[students[j]]
        pair = {"student_a": students[i], "student_b": students[j], "score": float(result.scores[k]),
                "a_in_b": float(share[i, j]), "b_in_a": float(share[j, i]),
                "a_like_reference": like_reference[students[i]], "b_like_reference": like_reference[students[j]]}
        if rank < top:
            _, _, (slices_a, slices_b) = compare_files(a, b)
            pair["html_a"], pair["html_b"] = _highlight(a, slices_a), _highlight(b, slices_b)
        result.pairs.append(pair)
    return result


def _compare_job(job):
    return compare_question(*job)


def analyse(course, assignment, threshold=THRESHOLD, workers=None, top=TOP_PAIRS):
    """``(results, problems)``: every question of ``assignment`` compared, in parallel over questions."""
    question_list = questions(course, assignment)
    answers, problems = read_answers(course, assignment, question_list)
    jobs = [(q, answers[(q.notebook, q.grade_id)], threshold, top) for q in question_list]
    return _map(_compare_job, jobs, workers), problems


def _map(function, jobs, workers=None):
    """``[function(job) for job in jobs]``, in ``workers`` processes (default: the cores) when more than one."""
    workers = min(workers or os.cpu_count() or 1, len(jobs) or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(function, jobs))
    return [function(job) for job in jobs]


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80] or "cell"


def plot_histogram(scores, title, path, threshold=THRESHOLD):
    """A PNG histogram of every pairwise score of one question (log scale), the threshold marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.4))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.88)
    ax = fig.add_subplot()
    ax.hist(scores, bins=np.linspace(0, 1, 41), color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:.2f}")
    if len(scores):
        ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("pairwise similarity", fontsize=8)
    ax.set_ylabel("pairs", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{title}: {len(scores)} pairs", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=80)


def _plot_job(job):
    plot_histogram(*job)


def _percent(value):
    return f"{100 * value:.0f}%"


def _question_html(result, image, threshold):
    q, esc = result.question, html.escape
    total = len(result.compared) + len(result.blank) + len(result.reference)
    parts = [f"<h2 id='{esc(_slug(q.notebook + '-' + q.grade_id))}'>{esc(q.notebook)} / {esc(q.grade_id)} "
             f"<small>({'written answer' if q.kind == 'markdown' else 'code'})</small></h2>",
             f"<p>{total} answer(s): {len(result.compared)} compared ({len(result.scores)} pairs), "
             f"{len(result.blank)} blank or minimal, {len(result.reference)} equal or close to the reference "
             f"solution; {len(result.pairs)} pair(s) at or above {_percent(threshold)}.</p>"]
    if result.reference:
        parts.append(f"<p class='ref'>Equal or close to the reference solution: {esc(', '.join(result.reference))}</p>")
    parts.append(f"<img src='{esc(image)}' alt='histogram of pairwise similarity for {esc(q.grade_id)}'>")
    if result.pairs:
        head = ("<tr><th>#</th><th>student A</th><th>student B</th><th>similarity</th><th>of A in B</th>"
                "<th>of B in A</th><th>A like reference</th><th>B like reference</th></tr>")
        rows = "".join(
            f"<tr><td>{n}</td><td>{esc(p['student_a'])}</td><td>{esc(p['student_b'])}</td>"
            f"<td>{_percent(p['score'])}</td><td>{_percent(p['a_in_b'])}</td><td>{_percent(p['b_in_a'])}</td>"
            f"<td>{_percent(p['a_like_reference'])}</td><td>{_percent(p['b_like_reference'])}</td></tr>"
            for n, p in enumerate(result.pairs, 1))
        parts.append(f"<table>{head}{rows}</table>")
        for n, p in enumerate(p for p in result.pairs if "html_a" in p):
            parts.append(f"<h3>{n + 1}. {esc(p['student_a'])} and {esc(p['student_b'])}: {_percent(p['score'])}</h3>"
                         f"<div class='pair'><pre>{p['html_a']}</pre><pre>{p['html_b']}</pre></div>")
        if len(result.pairs) > TOP_PAIRS:
            parts.append(f"<p>{len(result.pairs) - TOP_PAIRS} more pair(s) in similarity.csv.</p>")
    return "\n".join(parts)


def write_report(course, assignment, threshold=THRESHOLD, workers=None, results=None, problems=None):
    """Write ``reports/<hw>/similarity.html``, ``similarity.csv`` and the histograms; return the page's path."""
    if results is None:
        results, problems = analyse(course, assignment, threshold, workers)
    problems = problems or []
    out = course.reports_dir / assignment
    images = out / "similarity"
    images.mkdir(parents=True, exist_ok=True)
    fields = ["notebook", "grade_id", "student_a", "student_b", "score", "a_in_b", "b_in_a",
              "a_like_reference", "b_like_reference"]
    with (out / "similarity.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for result in results:
            for pair in result.pairs:
                writer.writerow({"notebook": result.question.notebook, "grade_id": result.question.grade_id,
                                 **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in pair.items()}})
    esc = html.escape
    sections, summary, plots = [], [], []
    for result in results:
        name = _slug(f"{result.question.notebook}-{result.question.grade_id}")
        plots.append((result.scores, f"{result.question.notebook} / {result.question.grade_id}",
                      images / f"{name}.png", threshold))
        sections.append(_question_html(result, f"similarity/{name}.png", threshold))
        summary.append(f"<tr><td><a href='#{esc(name)}'>{esc(result.question.notebook)} / "
                       f"{esc(result.question.grade_id)}</a></td><td>{len(result.compared)}</td>"
                       f"<td>{len(result.pairs)}</td><td>{len(result.reference)}</td><td>{len(result.blank)}</td></tr>")
    skipped = ("<h2>Skipped</h2><ul>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>") if problems else ""
    style = ("<style>body{font-family:sans-serif;max-width:1400px;margin:auto}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px}.notice{background:#fff4d6;padding:1em;"
             "border-left:4px solid #e0a800}.pair{display:flex;gap:1em}.pair pre{flex:1;overflow:auto;"
             "background:#f6f6f6;padding:.5em;font-size:12px;white-space:pre-wrap}mark{background:#ffe066}</style>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(assignment)} similarity</title>{style}"
            f"</head><body><h1>{esc(assignment)}: similarity between answers</h1>"
            f"<p class='notice'><strong>Similarity, not misconduct.</strong> {esc(NOTICE)}</p>"
            f"<p>How: comments and whitespace removed, names and strings normalised, then winnowed fingerprints "
            f"(copydetect); fingerprints of the starter code and of the reference solution do not count. Score: "
            f"the larger share of one answer's own fingerprints found in the other. Threshold "
            f"{_percent(threshold)}. Blank or minimal answers and answers equal or close to the reference "
            f"solution are not paired; the 'like reference' columns say how much of each answer is in the "
            f"reference.</p>"
            f"<table><tr><th>question</th><th>compared</th><th>pairs listed</th><th>equal or close to reference</th>"
            f"<th>blank or minimal</th></tr>{''.join(summary)}</table>"
            f"{skipped}{''.join(sections)}</body></html>")
    _map(_plot_job, plots, workers)
    path = out / "similarity.html"
    path.write_text(page, encoding="utf-8")
    return path
