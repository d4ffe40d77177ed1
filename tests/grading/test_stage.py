"""Phase 1 helpers (eep590_utils/grading/stage.py), without a course: what a submission may hold never
acts on the grader, and nbgrader's private APIs the kit relies on are still there."""
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from eep590_utils.grading.autograde import prepare_for_scoring
from eep590_utils.grading.files import copy_tree_safely
from eep590_utils.grading.stage import find_tampering, read_submitted_notebook, repair_metadata


def _meta(grade_id, **kw):
    return {"nbgrader": {"grade_id": grade_id, "schema_version": 3, **kw}}


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe not text", "not a text file"),
    (b'{"cells": [', "not a readable notebook"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": {}}', "no list of cells"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "widget", "source": "", "metadata": {}}]}', "cell 0"),
])
def test_unreadable_notebooks_are_refused_in_words(tmp_path, content, words):
    path = tmp_path / "nb.ipynb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=words):
        read_submitted_notebook(path)


def test_a_notebook_that_is_a_link_or_a_fifo_is_never_opened(tmp_path):
    (tmp_path / "real.ipynb").write_text(nbformat.writes(new_notebook()))
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "real.ipynb")
    os.mkfifo(tmp_path / "fifo.ipynb")
    with pytest.raises(ValueError, match="symbolic link"):
        read_submitted_notebook(tmp_path / "link.ipynb")
    with pytest.raises(ValueError, match="FIFO"):
        read_submitted_notebook(tmp_path / "fifo.ipynb")  # would block forever if opened


def test_copy_skips_links_and_special_files_and_says_so(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "sub").mkdir(parents=True)
    (src / "data.csv").write_text("1,2")
    (src / "sub" / "more.txt").write_text("x")
    (src / "secret").symlink_to("/etc/passwd")
    (src / "dir_link").symlink_to(tmp_path)
    os.mkfifo(src / "pipe")
    skipped = copy_tree_safely(src, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["data.csv", "sub", "sub/more.txt"]
    assert sorted(skipped) == [["dir_link", "a symbolic link"], ["pipe", "a FIFO"], ["secret", "a symbolic link"]]


def test_broken_nbgrader_metadata_is_repaired_in_words():
    nb = new_notebook(cells=[
        new_code_cell("a = 1", metadata=_meta("add", solution=True)),
        new_code_cell("a = 2", metadata=_meta("add", solution=True)),  # copy-pasted
        new_code_cell("b = 1", metadata={"nbgrader": "oops"}),
        new_code_cell("c = 1", metadata=_meta(["x"], grade=True, points=1)),
        new_code_cell("d = 1", metadata=_meta("d", grade=True, points="lots")),
        new_markdown_cell("fine", metadata=_meta("fine", grade=True, solution=True, points=2)),
    ])
    repairs = repair_metadata(nb)
    assert [r.split(":")[0] for r in repairs] == ["cell 1", "cell 2", "cell 3", "cell 4"]
    assert "repeats grade_id 'add'" in repairs[0] and "not a mapping" in repairs[1]
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells] == ["add", None, None, None, None, "fine"]


def test_tampering_is_found_whatever_the_metadata():
    locked = {"t1": "check(a)", "t2": "check(b)", "t3": "check(c)"}
    nb = new_notebook(cells=[new_code_cell("check(a)", metadata=_meta("t1", grade=True, locked=True)),
                             new_code_cell("pass", metadata=_meta("t2", grade=True, locked=True)),
                             new_code_cell("x", metadata={"nbgrader": "broken"})])
    assert find_tampering(nb, locked) == [("edited-locked-cell", "t2"), ("deleted-cell", "t3")]


def test_scoring_ignores_partial_credit_outputs_and_caps_sizes():
    test = new_code_cell("check()", metadata=_meta("t", grade=True, points=2))
    test.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1000000000"}, execution_count=1),
                    nbformat.v4.new_output("stream", name="stdout", text="y" * 1_000_000)]
    student = new_code_cell("x", metadata=_meta("s", solution=True))
    student.outputs = [nbformat.v4.new_output("execute_result", data={"text/html": "<b>" * 10}, execution_count=2)]
    nb = prepare_for_scoring(new_notebook(cells=[test, student, new_markdown_cell("z" * 500_000)]))
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream"] and len(nb.cells[0].outputs[0].text) < 300_000
    assert nb.cells[1].outputs[0].output_type == "execute_result"  # a student cell's result stays
    assert len(nb.cells[2].source) < 300_000 and "cut" in nb.cells[2].source


def test_the_private_nbgrader_apis_the_kit_relies_on_are_there():
    from nbgrader.apps.zipcollectapp import ZipCollectApp
    from nbgrader.converters import Autograde

    assert callable(getattr(Autograde, "_init_preprocessors", None))
    assert "_sanitizing" in Autograde.__dict__ or hasattr(Autograde(), "_sanitizing")
    assert callable(getattr(ZipCollectApp, "_format_collect_path", None))
