"""``eep590 collect`` (eep590_utils/grading/collect.py): LMS zip downloads and folders of submissions
end up as ``submitted/<student>/<hw>/<notebook>.ipynb``, byte for byte."""
import os
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from eep590_utils.grading.collect import collect_folder, collect_zip
from eep590_utils.grading.course import Course, CourseError
from eep590_utils.grading.release import release

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import make_toy_course, solved  # noqa: E402

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # nbgrader runs alembic

ZIP_BUGS = ("collect_zip collects nothing (returns [] and succeeds): (1) collect.py:43 ZipCollectApp(coursedir=..., "
            "config=course.config) re-applies nbgrader_config.py's CourseDirectory.assignment_id='' to the shared "
            "coursedir, undoing temp_attrs(assignment_id=...): create the app first, then set the assignment; "
            "(2) nbgrader_config.py sets ZipCollectApp.archive_directory to a path, but it is the step name "
            "('archive'); (3) nbgrader matches FileNameCollectorPlugin.named_regexp against the absolute path of "
            "the extracted file, so the '^<student_id>_' regexp never matches: prefix it with (?:.*[/\\\\])?")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A released toy course (nbgrader generate_assignment runs once for the module)."""
    root = make_toy_course(tmp_path_factory.mktemp("collect") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    return course, release_nb


def _clear_submissions(course):
    shutil.rmtree(course.path("submitted"), ignore_errors=True)


@pytest.fixture
def course(toy):
    course, _ = toy
    _clear_submissions(course)
    yield course
    _clear_submissions(course)


@pytest.fixture
def notebooks(toy):
    """Two different submissions, as the bytes a student uploads."""
    _, release_nb = toy
    return {"alice": nbformat.writes(solved(release_nb)).encode(),
            "bob": nbformat.writes(solved(release_nb, add="return b + a", mul="return 0")).encode()}


def _canvas_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_collect_zip_with_canvas_names(course, notebooks, tmp_path):
    archive = _canvas_zip(tmp_path / "submissions.zip", {
        "alice_123_456_toy.ipynb": notebooks["alice"],
        "bob_late_123_456_toy.ipynb": notebooks["bob"],
    })
    students = collect_zip(course, "toy", archive)
    assert students == ["alice", "bob"]
    for student in ("alice", "bob"):
        path = course.root / "submitted" / student / "toy" / "toy.ipynb"
        assert path.is_file(), f"{path} was not collected"
        assert path.read_bytes() == notebooks[student]
    assert course.submitted_students("toy") == ["alice", "bob"]


def test_collect_zip_that_matches_no_student_is_an_error(course, notebooks, tmp_path):
    archive = _canvas_zip(tmp_path / "odd.zip", {"readme.txt": b"not a submission"})
    with pytest.raises(CourseError, match="odd.zip"):
        collect_zip(course, "toy", archive)


def test_collect_zip_rejects_a_file_that_is_not_a_zip(course, tmp_path):
    fake = tmp_path / "grades_download.zip"
    fake.write_text("this is not a zip archive")
    with pytest.raises(CourseError, match="grades_download.zip") as info:
        collect_zip(course, "toy", fake)
    assert "not a zip" in str(info.value)
    assert course.submitted_students("toy") == []


def test_collect_zip_rejects_a_missing_file(course, tmp_path):
    with pytest.raises(CourseError, match="nowhere.zip"):
        collect_zip(course, "toy", tmp_path / "nowhere.zip")


def test_collect_folder_in_nbgrader_layout(course, notebooks, tmp_path):
    """``<student>/toy/*.ipynb``: notebooks and the files beside them (checkpoints) are copied."""
    for student, data in notebooks.items():
        folder = tmp_path / "downloads" / student / "toy"
        folder.mkdir(parents=True)
        (folder / "toy.ipynb").write_bytes(data)
        (folder / "model.pt").write_bytes(b"weights of " + student.encode())
    students = collect_folder(course, "toy", tmp_path / "downloads")
    assert students == ["alice", "bob"]
    for student, data in notebooks.items():
        dest = course.root / "submitted" / student / "toy"
        assert (dest / "toy.ipynb").read_bytes() == data
        assert (dest / "model.pt").read_bytes() == b"weights of " + student.encode()
    assert course.submitted_students("toy") == ["alice", "bob"]


def test_collect_folder_flat_layout_and_recollection_replaces(course, notebooks, tmp_path):
    """``<student>/*.ipynb``; collecting again replaces the earlier submission (no stale files)."""
    first = tmp_path / "first"
    (first / "alice").mkdir(parents=True)
    (first / "alice" / "toy.ipynb").write_bytes(notebooks["bob"])
    (first / "alice" / "stale.txt").write_text("from the first collection")
    assert collect_folder(course, "toy", first) == ["alice"]

    second = tmp_path / "second"
    for student, data in notebooks.items():
        (second / student).mkdir(parents=True)
        (second / student / "toy.ipynb").write_bytes(data)
    (second / "carol").mkdir()  # a student folder without a notebook is not a submission
    (second / "carol" / "notes.txt").write_text("no notebook")
    (second / "stray.ipynb").write_bytes(notebooks["alice"])  # a file at the top is not a student
    assert collect_folder(course, "toy", second) == ["alice", "bob"]
    for student, data in notebooks.items():
        dest = course.root / "submitted" / student / "toy"
        assert (dest / "toy.ipynb").read_bytes() == data
        assert sorted(p.name for p in dest.iterdir()) == ["toy.ipynb"]
    assert course.submitted_students("toy") == ["alice", "bob"]


def test_collect_folder_mixed_layouts(course, notebooks, tmp_path):
    downloads = tmp_path / "mixed"
    (downloads / "alice" / "toy").mkdir(parents=True)
    (downloads / "alice" / "toy" / "toy.ipynb").write_bytes(notebooks["alice"])
    (downloads / "bob").mkdir()
    (downloads / "bob" / "toy.ipynb").write_bytes(notebooks["bob"])
    assert collect_folder(course, "toy", downloads) == ["alice", "bob"]
    assert (course.root / "submitted" / "alice" / "toy" / "toy.ipynb").read_bytes() == notebooks["alice"]
    assert (course.root / "submitted" / "bob" / "toy" / "toy.ipynb").read_bytes() == notebooks["bob"]
    assert not (course.root / "submitted" / "alice" / "toy" / "toy").exists()


def test_collect_folder_without_notebooks_is_an_error(course, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CourseError, match="no notebooks"):
        collect_folder(course, "toy", empty)
    (empty / "alice").mkdir()
    (empty / "alice" / "toy.py").write_text("print('not a notebook')")
    with pytest.raises(CourseError, match="no notebooks"):
        collect_folder(course, "toy", empty)
    assert course.submitted_students("toy") == []


def test_collect_folder_that_does_not_exist_is_an_error(course, tmp_path):
    with pytest.raises(CourseError, match="missing_downloads"):
        collect_folder(course, "toy", tmp_path / "missing_downloads")


def test_collect_zip_skips_bad_ids_and_paths_and_collects_the_rest(course, notebooks, tmp_path):
    archive = _canvas_zip(tmp_path / "hostile.zip", {
        "alice_1_1_toy.ipynb": notebooks["alice"],
        ".._1_1_toy.ipynb": notebooks["bob"],  # student id '..': would write <course>/toy/toy.ipynb
        "._2_2_toy.ipynb": notebooks["bob"],
        "../../evil_3_3_toy.ipynb": notebooks["bob"],  # made nbgrader refuse the whole zip
        "/abs_4_4_toy.ipynb": notebooks["bob"],
        "bob_5_5_toy.ipynb": notebooks["bob"],
        "carol_6_6_notes.txt": b"not a notebook",
    })
    said = []
    assert collect_zip(course, "toy", archive, echo=said.append) == ["alice", "bob"]
    assert sorted(p.name for p in course.path("submitted").iterdir()) == ["alice", "bob"]
    assert not (course.root / "toy").exists() and not (course.root.parent / "evil").exists()
    assert len(said) == 5 and all(line.startswith("skipped ") for line in said)
    assert any("'..' is not a student id" in line for line in said)
    assert any("outside the download" in line for line in said)


def test_collect_zip_caps_what_a_zip_bomb_unpacks(course, notebooks, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("alice_1_1_toy.ipynb", notebooks["alice"])
        with zipped.open("bob_1_1_toy.ipynb", "w", force_zip64=True) as entry:
            block = b"\0" * 2**20
            for _ in range(100):  # 100 MiB of zeros: a few hundred kB zipped
                entry.write(block)
    assert archive.stat().st_size < 2**20
    said = []
    assert collect_zip(course, "toy", archive, echo=said.append) == ["alice"]
    assert any("bob_1_1_toy.ipynb" in line and "MiB" in line for line in said)
    assert not course.path("submitted", "bob").exists()


def test_collect_folder_never_follows_links_or_opens_special_files(course, notebooks, tmp_path):
    downloads = tmp_path / "downloads"
    secret = tmp_path / "instructor_secret.txt"
    secret.write_text("THE INSTRUCTOR'S KEY")
    for student in ("alice", "bob"):
        (downloads / student).mkdir(parents=True)
        (downloads / student / "toy.ipynb").write_bytes(notebooks[student])
    (downloads / "alice" / "key.txt").symlink_to(secret)
    (downloads / "alice" / "dangling.csv").symlink_to(tmp_path / "nowhere")
    os.mkfifo(downloads / "alice" / "pipe")
    (downloads / "eve").symlink_to(downloads / "bob")  # a whole student folder that is a link
    (downloads / "..x").mkdir()
    said = []
    assert collect_folder(course, "toy", downloads, echo=said.append) == ["alice", "bob"]
    submitted = course.path("submitted", "alice", "toy")
    assert sorted(p.name for p in submitted.iterdir()) == ["toy.ipynb"]
    assert not any(p.is_symlink() for p in course.path("submitted").rglob("*"))
    assert sum("skipped" in line for line in said) == 5
    assert any("pipe: a FIFO" in line for line in said) and any("key.txt: a symbolic link" in line for line in said)
