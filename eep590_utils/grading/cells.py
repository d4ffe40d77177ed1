"""The nbgrader cell vocabulary, once: which cells are graded, solutions, tests, written answers and
question cells, and the region markers (solution, hidden tests, mark scheme).

Every grading module asks here instead of reading ``cell.metadata.nbgrader`` itself. The predicates
mean what ``nbgrader.utils``' ``is_grade``/``is_solution``/``is_locked``/``is_task`` mean (a test pins
that), but never raise: a submitted notebook's metadata may be anything (a string, a list, missing).
Markers are matched as nbgrader matches them: a line *containing* the configured delimiter
(``ClearSolutions.begin_solution_delimeter`` and friends, read from the course configuration when one is
given), so no region nbgrader would clear escapes a leak check or a redaction.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

# nbgrader 0.9.6's defaults (tests/grading/test_cells.py pins them against nbgrader's own traits)
DEFAULT_DELIMITERS = {
    "solution": ("BEGIN SOLUTION", "END SOLUTION"),
    "hidden test": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    "mark scheme": ("BEGIN MARK SCHEME", "END MARK SCHEME"),
}
_CONFIG_KEYS = {  # region -> (configurable class, begin trait, end trait)
    "solution": ("ClearSolutions", "begin_solution_delimeter", "end_solution_delimeter"),
    "hidden test": ("ClearHiddenTests", "begin_test_delimeter", "end_test_delimeter"),
    "mark scheme": ("ClearMarkScheme", "begin_mark_scheme_delimeter", "end_mark_scheme_delimeter"),
}
MIN_QUOTED = 8  # hidden lines shorter than this ("))", "else:") are too common to redact by
REDACTED = "[hidden test: details withheld]"  # what a message quoting a hidden line becomes in feedback and reports
RELEASE_STUB = "YOUR ANSWER HERE"  # ClearSolutions.text_stub in nbgrader_config.py: a written answer as released


@dataclass(frozen=True)
class Region:
    kind: str  # solution | hidden test | mark scheme
    begin: str
    end: str

    def begins(self, line: str) -> bool:
        return self.begin in line

    def ends(self, line: str) -> bool:
        return self.end in line


def regions(config: Any = None) -> tuple[Region, ...]:
    """The three region kinds with the course's delimiters (nbgrader's defaults unless ``config`` —
    a traitlets ``Config`` such as ``Course.config`` — sets others)."""
    found = []
    for kind, (begin, end) in DEFAULT_DELIMITERS.items():
        section, begin_key, end_key = _CONFIG_KEYS[kind]
        configured = config.get(section, {}) if config is not None else {}
        found.append(Region(kind, configured.get(begin_key, begin), configured.get(end_key, end)))
    return tuple(found)


def read_cells(path: str | os.PathLike) -> list[dict]:
    """The cells of a v4 notebook file read as plain JSON, each ``source`` (and output ``text``) joined into
    one string as nbformat gives it, for readers that only look (``nbformat`` costs a second of CPU to
    import: its validator). Raises ``ValueError`` naming the file when it is not a v4 notebook."""
    try:
        with open(path, encoding="utf-8") as handle:
            nb = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable notebook ({error})") from None
    found = nb.get("cells") if isinstance(nb, dict) and nb.get("nbformat") == 4 else None
    if not isinstance(found, list):
        raise ValueError(f"{path}: not a version 4 notebook (no list of cells)")
    cells = [cell for cell in found if isinstance(cell, dict)]
    for cell in cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(map(str, cell["source"]))
        for output in cell.get("outputs", []) if isinstance(cell.get("outputs"), list) else []:
            if isinstance(output, dict) and isinstance(output.get("text"), list):
                output["text"] = "".join(map(str, output["text"]))
    return cells


def nbgrader_meta(cell: Mapping) -> dict:
    """A cell's nbgrader metadata, or ``{}`` when it has none or it is not a mapping."""
    metadata = cell.get("metadata") if isinstance(cell, Mapping) else None
    meta = metadata.get("nbgrader") if isinstance(metadata, Mapping) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Mapping) -> str | None:
    """The cell's ``grade_id`` when it is text, else None."""
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def points(cell: Mapping) -> float:
    value = nbgrader_meta(cell).get("points", 0)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def is_grade(cell: Mapping) -> bool:
    return bool(nbgrader_meta(cell).get("grade", False))


def is_solution(cell: Mapping) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def is_task(cell: Mapping) -> bool:
    return bool(nbgrader_meta(cell).get("task", False))


def is_locked(cell: Mapping) -> bool:
    meta = nbgrader_meta(cell)
    if not meta or is_solution(cell):
        return False
    return is_grade(cell) or bool(meta.get("locked", False))


def is_test(cell: Mapping) -> bool:
    """An autograded test cell: graded, not a solution (its points come from its judge)."""
    return is_grade(cell) and not is_solution(cell) and cell.get("cell_type") == "code"


def is_written_answer(cell: Mapping) -> bool:
    """A manually graded answer cell (markdown, graded solution): the student writes, a TA scores."""
    return is_grade(cell) and is_solution(cell) and cell.get("cell_type") == "markdown"


def is_question(cell: Mapping) -> bool:
    """The 0-point task cell above a written answer: the question and its mark scheme."""
    return is_task(cell) and not points(cell)


def region_lines(source: str, config: Any = None) -> dict[str, list[str]]:
    """``{kind: [stripped line, ...]}``: the non-blank lines inside each kind of region of ``source``
    (marker lines excluded), plus ``"public"``: the stripped lines outside every region."""
    kinds = regions(config)
    found: dict[str, list[str]] = {region.kind: [] for region in kinds}
    found["public"] = []
    inside = None
    for line in source.splitlines():
        begun = next((region for region in kinds if region.begins(line)), None)
        if begun is not None:
            inside = begun
        elif inside is not None and inside.ends(line):
            inside = None
        elif any(region.ends(line) for region in kinds):
            continue  # a stray end marker: not student-visible text, not a secret either
        elif line.strip():
            found[inside.kind if inside else "public"].append(line.strip())
    return found


def hidden_lines(cell: Mapping, config: Any = None) -> list[str]:
    """The stripped lines inside the cell's hidden-test regions."""
    return region_lines(cell.get("source", "") or "", config)["hidden test"]


def quoted_secrets(notebook_cells, config: Any = None) -> set[str]:
    """The hidden-test lines of these cells long enough (:data:`MIN_QUOTED`) to recognise in a message that
    quotes one: feedback and the class report withhold such messages."""
    return {line for cell in notebook_cells for line in hidden_lines(cell, config) if len(line) >= MIN_QUOTED}


def has_region(source: str, kind: str, config: Any = None) -> bool:
    """Whether ``source`` has a line that opens a region of ``kind``."""
    region = next(r for r in regions(config) if r.kind == kind)
    return any(region.begins(line) for line in source.splitlines())


def solution_body(source: str, config: Any = None) -> str:
    """``source`` with each solution region's marker lines removed, keeping what is inside (the filled-in
    solution a student would write)."""
    region = next(r for r in regions(config) if r.kind == "solution")
    kept = [line for line in source.splitlines(keepends=True) if not (region.begins(line) or region.ends(line))]
    return "".join(kept)
