"""The nbgrader cell vocabulary (grading/cells.py) means what nbgrader means, and never raises on a
submitted notebook's broken metadata."""

import nbformat
import pytest
from conftest import REPO
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions
from traitlets.config import Config

from eep590_utils.grading import cells


def meta(**kw):
    return {"nbgrader": {"schema_version": 3, "grade_id": "q", **kw}}


CASES = [
    new_code_cell("x = 1"),
    new_code_cell("x = 1", metadata=meta(grade=True, solution=False, locked=True, points=2)),  # a test
    new_code_cell("x = 1", metadata=meta(grade=False, solution=True, locked=False)),  # code to write
    new_code_cell("x = 1", metadata=meta(grade=True, solution=True, points=1)),  # autograded answer
    new_markdown_cell("A", metadata=meta(grade=True, solution=True, locked=False, points=2)),  # written answer
    new_markdown_cell("Q", metadata=meta(task=True, locked=True, points=0)),  # question + mark scheme
    new_markdown_cell("Q", metadata=meta(grade=False, solution=False, locked=True)),  # read-only text
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_predicates_agree_with_nbgrader(index):
    cell = CASES[index]
    for name in ("is_grade", "is_solution", "is_locked", "is_task"):
        assert getattr(cells, name)(cell) == bool(getattr(utils, name)(cell)), name


def test_roles():
    test, code, answer, written, question = CASES[1], CASES[2], CASES[3], CASES[4], CASES[5]
    assert cells.is_test(test) and not any(cells.is_test(c) for c in (code, answer, written, question))
    assert cells.is_written_answer(written) and not cells.is_written_answer(answer)
    assert cells.is_question(question) and not cells.is_question(written)
    assert cells.grade_id(test) == "q" and cells.points(test) == 2.0


@pytest.mark.parametrize("metadata", [{"nbgrader": "grade"}, {"nbgrader": ["grade"]}, "not a mapping",
                                      {"nbgrader": {"grade_id": ["a"], "points": "lots", "grade": True}}])
def test_broken_metadata_never_raises(metadata):
    cell = {"cell_type": "code", "source": "", "metadata": metadata}
    assert cells.grade_id(cell) is None
    assert cells.points(cell) == 0.0
    cells.is_locked(cell), cells.is_test(cell), cells.nbgrader_meta(cell)


def test_default_markers_are_nbgrader_defaults():
    found = {r.kind: (r.begin, r.end) for r in cells.regions()}
    assert found["solution"] == (ClearSolutions().begin_solution_delimeter, ClearSolutions().end_solution_delimeter)
    assert found["hidden test"] == (ClearHiddenTests().begin_test_delimeter, ClearHiddenTests().end_test_delimeter)
    assert found["mark scheme"] == (ClearMarkScheme().begin_mark_scheme_delimeter,
                                    ClearMarkScheme().end_mark_scheme_delimeter)


def test_regions_match_as_nbgrader_does_and_follow_the_course_config():
    # nbgrader clears any line *containing* the delimiter, with or without "###" or "==="
    source = "public()\n# BEGIN HIDDEN TESTS\nassert secret() == 42\nEND HIDDEN TESTS\nalso_public()\n"
    lines = cells.region_lines(source)
    assert lines["hidden test"] == ["assert secret() == 42"] and lines["public"] == ["public()", "also_public()"]
    config = Config({"ClearSolutions": {"begin_solution_delimeter": "<<<", "end_solution_delimeter": ">>>"}})
    custom = cells.region_lines("a = 1\n# <<<\nb = answer()\n# >>>\n", config)
    assert custom["solution"] == ["b = answer()"] and cells.region_lines("# <<<\nb = 2\n")["solution"] == []


def test_solution_body_is_what_nbgrader_would_strip_around():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert cells.solution_body(source) == "def f(x):\n    return 2 * x\n"
    nb = nbformat.v4.new_notebook(cells=[new_code_cell(source, metadata=meta(solution=True, grade=False))])
    assert cells.has_region(nb.cells[0].source, "solution")


def test_read_cells_gives_what_nbformat_gives(tmp_path):
    """The plain-JSON reader (report's, without nbformat's import) agrees with nbformat on the kit's own
    notebooks, lists joined; a file that is no v4 notebook is named in a ValueError."""
    for path in sorted(REPO.glob("source/*/*.ipynb")) + sorted(REPO.glob("samples/hw1/perfect/*.ipynb")):
        expected = nbformat.read(path, as_version=4).cells
        got = cells.read_cells(path)
        assert [c["source"] for c in got] == [c.source for c in expected]
        assert [cells.grade_id(c) for c in got] == [cells.grade_id(c) for c in expected]
        assert [[o.get("text") for o in c.get("outputs", [])] for c in got] == \
               [[o.get("text") for o in c.get("outputs", [])] for c in expected]
    (tmp_path / "cut.ipynb").write_text('{"cells": [')
    (tmp_path / "v3.ipynb").write_text('{"nbformat": 3, "worksheets": []}')
    (tmp_path / "list.ipynb").write_text("[]")
    for name, message in (("cut", "not a readable notebook"), ("v3", "not a version 4 notebook"),
                          ("list", "not a version 4 notebook"), ("absent", "not a readable notebook")):
        with pytest.raises(ValueError, match=f"{name}.ipynb: {message}"):
            cells.read_cells(tmp_path / f"{name}.ipynb")
