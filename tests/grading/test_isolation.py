"""Every phase of autograde isolates every notebook: each hostile or broken submission below is graded in
one run beside honest students, and neither stops the run nor changes anyone else's grade (issue 10)."""
import copy
import os
import sys
from pathlib import Path

import nbformat
import pytest

from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course, normalize_db_url
from eep590_utils.grading.feedback import generate_feedback
from eep590_utils.grading.release import release
from eep590_utils.grading.sandbox import bwrap_path
from eep590_utils.grading.settings import Limits

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import make_toy_course, solved, submit  # noqa: E402

pytestmark = pytest.mark.slow
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
LIMITS = Limits(cell_timeout=20, notebook_timeout=120, memory_bytes=2**30)
SECRET = "INSTRUCTOR-ONLY-SECRET-7731"
PERFECT, PARTIAL = (1, 2, 1), (1, 0, 1)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _with_cell_after(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    index = nb.cells.index(_cell(nb, grade_id))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _submissions(release_nb, outside):
    perfect = solved(release_nb)
    string_meta = copy.deepcopy(perfect)
    _cell(string_meta, "mul").metadata["nbgrader"] = "oops"
    list_id = copy.deepcopy(perfect)
    _cell(list_id, "mul").metadata["nbgrader"]["grade_id"] = ["mul"]
    copied = copy.deepcopy(perfect)  # an honest student who copy-pasted a cell (metadata and all)
    add_cell = _cell(copied, "add")
    copied.cells.insert(copied.cells.index(add_cell) + 1, copy.deepcopy(add_cell))
    huge_result = _with_cell_after(perfect, "add", "get_ipython().input_transformers_post.append("
                                                   "lambda lines: lines + ['\\n1000000000\\n'])")
    no_plain = _with_cell_after(perfect, "add", (
        "class Html:\n    def _repr_mimebundle_(self, **kw):\n        return {'text/html': '<b>hi</b>'}\n"
        "get_ipython().input_transformers_post.append(lambda lines: lines + ['\\nHtml()\\n'])"))
    big_markdown = copy.deepcopy(perfect)
    big_markdown.cells.append(nbformat.v4.new_markdown_cell("x" * 30_000_000))
    return {
        "alice": (perfect, PERFECT), "bob": (solved(release_nb, add="return a - b if b < 0 else a + b"), PARTIAL),
        "dangling": (perfect, PERFECT), "fifo": (perfect, PERFECT), "links": (perfect, PERFECT),
        "string_meta": (string_meta, PERFECT), "list_id": (list_id, PERFECT), "copied": (copied, PERFECT),
        "huge_result": (huge_result, PERFECT), "no_plain": (no_plain, PERFECT), "big_markdown": (big_markdown, PERFECT),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("isolation")
    root = make_toy_course(base / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    outside = base / "home" / ".ssh"
    outside.mkdir(parents=True)
    (outside / "id_key").write_text(SECRET)
    (root / "notes.txt").write_text(SECRET)  # an instructor's file in the course folder
    expected = {}
    for student, (nb, scores) in _submissions(release_nb, outside).items():
        folder = submit(root, student, nb)
        expected[student] = scores
        if student == "dangling":
            (folder / "data.csv").symlink_to(base / "nowhere.csv")
        elif student == "fifo":
            os.mkfifo(folder / "pipe")
        elif student == "links":
            (folder / "gradebook.db").symlink_to("../../../gradebook.db")
            (folder / "solution.ipynb").symlink_to(root / "source" / "toy" / "toy.ipynb")
            (folder / "notes.txt").symlink_to(root / "notes.txt")
            (folder / "passwd").symlink_to("/etc/passwd")
            (folder / "key").symlink_to(outside / "id_key")
            (folder / "up").symlink_to(root)  # a folder link
    said = []
    records = autograde(course, "toy", workers=2, limits=LIMITS, echo=said.append, sandbox=bwrap_path() is not None)
    return course, records, expected, said


def _scores(course, student):
    with course.gradebook() as gb:
        grades = {g.name: g.score for g in gb.find_submission_notebook("toy", "toy", student).grades}
    return tuple(grades[g] for g in ("add_visible", "add_hidden", "mul_visible"))


def test_every_student_is_graded_as_alone(graded):
    course, records, expected, _ = graded
    assert {s: _scores(course, s) for s in expected} == expected
    assert all(r.final for r in records.values())


@pytest.mark.parametrize("student", ["dangling", "fifo", "links"])
def test_links_and_special_files_are_skipped_and_flagged(graded, student):
    course, records, _, _ = graded
    assert "unsafe-file" in records[student].flags
    copy_ = course.path("autograded", student, "toy")
    assert not any(p.is_symlink() or not (p.is_file() or p.is_dir()) for p in copy_.rglob("*"))
    assert sorted(p.name for p in copy_.iterdir()) == ["toy.ipynb"]


def test_nothing_a_link_points_to_reaches_the_autograded_copy_or_feedback(graded):
    course, records, _, _ = graded
    assert {path for path, _ in records["links"].skipped_files} == {"gradebook.db", "solution.ipynb", "notes.txt",
                                                                    "passwd", "key", "up"}
    generate_feedback(course, "toy", "links")
    for folder in (course.path("autograded", "links"), course.path("feedback", "links")):
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                assert SECRET not in text and "root:x:0:0" not in text and "BEGIN SOLUTION" not in text, path


@pytest.mark.parametrize("student", ["string_meta", "list_id", "copied"])
def test_broken_metadata_is_repaired_and_said_in_words(graded, student):
    _, records, _, _ = graded
    rec = records[student].notebooks["toy"]
    assert rec.status == "graded" and "repaired-metadata" in records[student].flags
    assert rec.repaired and all("graded as an ordinary cell" in line for line in rec.repaired)


def test_outputs_nbgrader_cannot_score_cost_nothing(graded):
    course, records, _, _ = graded
    for student in ("huge_result", "no_plain"):
        assert records[student].notebooks["toy"].status == "graded"
        nb = nbformat.read(course.path("autograded", student, "toy") / "toy.ipynb", as_version=4)
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
        assert not any(o.output_type == "execute_result" for c in tests for o in c.outputs)


def test_a_huge_cell_is_cut_in_the_autograded_copy_and_feedback(graded):
    course, _, _, _ = graded
    path = course.path("autograded", "big_markdown", "toy") / "toy.ipynb"
    assert path.stat().st_size < 1_000_000
    generate_feedback(course, "toy", "big_markdown")
    page = course.path("feedback", "big_markdown", "toy") / "toy.html"
    assert page.stat().st_size < 2_000_000 and "cut: this cell held 30,000,000 characters" in page.read_text()


def test_postgresql_url_as_the_readme_writes_it_gets_the_installed_driver():
    assert normalize_db_url("postgresql://user@host/eep590") == "postgresql+psycopg2://user@host/eep590"
    assert normalize_db_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_db_url("sqlite:////tmp/gradebook.db") == "sqlite:////tmp/gradebook.db"


def test_a_notebook_the_grader_cannot_run_is_ungraded_not_zero(tmp_path, monkeypatch):
    from eep590_utils.grading import jobs as jobs_module
    from eep590_utils.grading.execute import GraderFault
    from eep590_utils.grading.export import PendingGradesError, export_grades

    root = make_toy_course(tmp_path / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "alice", solved(release_nb))
    submit(root, "bob", solved(release_nb))
    real, attempts = jobs_module.run_job, []

    def flaky(job):
        if job.student == "bob":
            attempts.append(1)
            raise GraderFault("the kernel did not start in 3 attempts (Kernel didn't respond in 120 seconds)")
        return real(job)

    monkeypatch.setattr(jobs_module, "run_job", flaky)
    records = autograde(course, "toy", workers=2, limits=LIMITS, echo=lambda *_: None, sandbox=bwrap_path() is not None)
    assert len(attempts) == 1 + jobs_module.GRADER_RETRIES
    assert records["alice"].final and records["alice"].notebooks["toy"].status == "graded"
    bob = records["bob"].notebooks["toy"]
    assert bob.status == "ungraded" and "not the student's fault" in bob.reason
    with pytest.raises(PendingGradesError, match="toy"):
        export_grades(course, tmp_path / "grades.csv")
    assert not (tmp_path / "grades.csv").exists()
    monkeypatch.setattr(jobs_module, "run_job", real)
    records = autograde(course, "toy", students=["bob"], workers=1, limits=LIMITS, echo=lambda *_: None,
                        sandbox=bwrap_path() is not None)
    assert records["bob"].final
    with course.gradebook() as gb:
        assert sum(g.score for g in gb.find_submission_notebook("toy", "toy", "bob").grades) == 4
