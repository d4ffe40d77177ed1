"""``eep590 collect``: bring submissions into ``submitted/<student>/<hw>/``.

Two inputs: a folder already in nbgrader's layout (``<student>/<hw>/*.ipynb``, or ``<student>/*.ipynb``),
or an LMS download (a zip of notebooks whose names carry the student id, e.g. Canvas's
``<student>_<n>_<n>_<notebook>.ipynb``), collected by nbgrader's ``zip_collect``.
"""
import shutil
import zipfile
from pathlib import Path

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
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
    app = ZipCollectApp(coursedir=course.coursedir, config=course.config)  # (re)applies the config: before temp_attrs
    app.force = True
    with temp_attrs(course.coursedir, assignment_id=assignment):
        archive_dir = Path(app._format_collect_path(app.archive_directory))
        if archive_dir.exists():
            shutil.rmtree(archive_dir)
        archive_dir.mkdir(parents=True)
        shutil.copy(archive, archive_dir / archive.name)
        result = capture_log(app)
    if not result["success"]:
        raise CourseError(f"zip_collect failed for {archive}:\n{result.get('error') or result.get('log')}")
    plugin = FileNameCollectorPlugin(config=course.config)
    with zipfile.ZipFile(archive) as zipped:
        students = sorted({info["student_id"] for name in zipped.namelist() if (info := plugin.collect(name))})
    collected = [s for s in students if s in course.submitted_students(assignment)]
    if not collected:
        raise CourseError(f"no notebook in {archive} has a name like <student>_..._<notebook>.ipynb "
                          f"(FileNameCollectorPlugin.named_regexp in nbgrader_config.py): nothing was collected")
    return collected
