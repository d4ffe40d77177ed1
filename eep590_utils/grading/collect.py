"""``eep590 collect``: bring submissions into ``submitted/<student>/<hw>/``.

Two inputs: a folder already in nbgrader's layout (``<student>/<hw>/*.ipynb``, or ``<student>/*.ipynb``),
or an LMS download (a zip of notebooks whose names carry the student id, e.g. Canvas's
``<student>_<n>_<n>_<notebook>.ipynb``), collected by nbgrader's ``zip_collect``.
"""
import shutil
import zipfile
from pathlib import Path

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.utils import capture_log, temp_attrs

from .course import CourseError


def collect_folder(course, assignment, folder):
    """Copy ``folder/<student>/[<assignment>/]*`` into ``submitted/``; return the students collected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(f"{folder} is not a folder of submissions")
    students = []
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        src = student_dir / assignment if (student_dir / assignment).is_dir() else student_dir
        if not any(src.glob("*.ipynb")):
            continue
        dest = course.path("submitted", student_dir.name, assignment)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
        students.append(student_dir.name)
    if not students:
        raise CourseError(f"no notebooks found under {folder}/<student>/{assignment}/ or {folder}/<student>/")
    return students


def collect_zip(course, assignment, archive):
    """Collect an LMS zip download with nbgrader ``zip_collect``; return the students collected."""
    archive = Path(archive)
    if not zipfile.is_zipfile(archive):
        raise CourseError(f"{archive} is not a zip file")
    with temp_attrs(course.coursedir, assignment_id=assignment):
        app = ZipCollectApp(coursedir=course.coursedir, config=course.config)
        app.force = True
        archive_dir = Path(app._format_collect_path(app.archive_directory))
        if archive_dir.exists():
            shutil.rmtree(archive_dir)
        archive_dir.mkdir(parents=True)
        shutil.copy(archive, archive_dir / archive.name)
        result = capture_log(app)
    if not result["success"]:
        raise CourseError(f"zip_collect failed for {archive}:\n{result.get('error') or result.get('log')}")
    students = sorted(s for s in course.submitted_students(assignment))
    return students
