"""``eep590 collect``: bring submissions into ``submitted/<student>/<hw>/``.

Two inputs: a folder already in nbgrader's layout (``<student>/<hw>/*.ipynb``, or ``<student>/*.ipynb``),
or an LMS download (a zip of notebooks whose names carry the student id, e.g. Canvas's
``<student>_<n>_<n>_<notebook>.ipynb``), collected by nbgrader's ``zip_collect``.

An upload is data, never instructions: a student id must be a plain name (never ``.``, ``..`` or a path),
links and special files are never followed or opened, and a zip is read entry by entry with a cap on
what it may unpack. Whatever is skipped is said in one line with its reason; the rest is collected.
"""
import re
import shutil
import stat
import zipfile
from pathlib import Path

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
from nbgrader.utils import capture_log, temp_attrs

from .course import CourseError
from .files import copy_tree_safely

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}$")
MAX_ENTRY_BYTES = 64 * 2**20  # one notebook unpacked from a zip
MAX_ZIP_BYTES = 2 * 2**30  # everything unpacked from one zip


def check_student_id(student):
    """None when ``student`` can name a folder in ``submitted/``, else the reason it cannot."""
    if not STUDENT_ID.match(student or "") or ".." in student:
        return f"{student!r} is not a student id (letters, digits, '_', '.', '-', '@'; not a path)"
    return None


def collect_folder(course, assignment, folder, echo=print):
    """Copy ``folder/<student>/[<assignment>/]*`` into ``submitted/``; return the students collected.
    Links, special files and bad student ids are skipped, each said in a line through ``echo``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(f"{folder} is not a folder of submissions")
    students = []
    for student_dir in sorted(folder.iterdir()):
        if student_dir.is_symlink() or not student_dir.is_dir():
            if student_dir.is_symlink():
                echo(f"skipped {student_dir.name}: a symbolic link, not a submission folder")
            continue
        problem = check_student_id(student_dir.name)
        if problem:
            echo(f"skipped {student_dir.name}: {problem}")
            continue
        src = student_dir / assignment
        if src.is_symlink():
            echo(f"skipped {student_dir.name}/{assignment}: a symbolic link, not a submission folder")
            continue
        src = src if src.is_dir() else student_dir
        if not any(p.is_file() and not p.is_symlink() for p in src.glob("*.ipynb")):
            continue
        dest = course.path("submitted", student_dir.name, assignment)
        if dest.exists():
            shutil.rmtree(dest)
        for path, what in copy_tree_safely(src, dest):
            echo(f"skipped {student_dir.name}/{path}: {what}")
        students.append(student_dir.name)
    if not students:
        raise CourseError(f"no notebooks found under {folder}/<student>/{assignment}/ or {folder}/<student>/")
    return students


def safe_zip_members(archive, plugin, echo=print):
    """``[(info, file name)]`` of the entries of ``archive`` that may be collected; the rest are said."""
    members, total, names = [], 0, set()
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            name = info.filename
            if info.is_dir():
                continue
            base = name.replace("\\", "/").rsplit("/", 1)[-1]
            parts = name.replace("\\", "/").split("/")
            mode = info.external_attr >> 16
            reason = None
            if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                reason = "a path outside the download"
            elif stat.S_ISLNK(mode):
                reason = "a symbolic link"
            elif not base.endswith(".ipynb"):
                reason = "not a notebook"
            elif info.file_size > MAX_ENTRY_BYTES:
                reason = f"{info.file_size / 2**20:.0f} MiB unpacked, over {MAX_ENTRY_BYTES // 2**20} MiB"
            elif total + info.file_size > MAX_ZIP_BYTES:
                reason = f"past the {MAX_ZIP_BYTES // 2**30} GiB a download may unpack to"
            else:
                match = plugin.collect(base)
                if not match:
                    reason = "its name is not <student>_..._<notebook>.ipynb"
                else:
                    reason = check_student_id(match["student_id"])
                    if not reason and base in names:
                        reason = "a second file of the same name"
            if reason:
                echo(f"skipped {name}: {reason}")
                continue
            names.add(base)
            total += info.file_size
            members.append((info, base))
    return members


def _copy_capped(zipped, info, target):
    """Unpack one entry, stopping at ``MAX_ENTRY_BYTES`` whatever its header says; True when complete."""
    written = 0
    with zipped.open(info) as source, open(target, "wb") as out:
        while chunk := source.read(2**20):
            written += len(chunk)
            if written > MAX_ENTRY_BYTES:
                return False
            out.write(chunk)
    return True


def collect_zip(course, assignment, archive, echo=print):
    """Collect an LMS zip download with nbgrader ``zip_collect``; return the students collected.

    nbgrader gets a clean copy of the download: only notebooks whose names carry a valid student id,
    flattened, each unpacked under a size cap (a zip bomb stops at the cap, not at the disk's end)."""
    archive = Path(archive)
    if not zipfile.is_zipfile(archive):
        raise CourseError(f"{archive} is not a zip file")
    plugin = FileNameCollectorPlugin(config=course.config)
    members = safe_zip_members(archive, plugin, echo)
    app = ZipCollectApp(coursedir=course.coursedir, config=course.config)  # (re)applies the config: before temp_attrs
    app.force = True
    students = set()
    with temp_attrs(course.coursedir, assignment_id=assignment):
        archive_dir = Path(app._format_collect_path(app.archive_directory))
        if archive_dir.exists():
            shutil.rmtree(archive_dir)
        archive_dir.mkdir(parents=True)
        staged = archive_dir / "files"
        staged.mkdir()
        with zipfile.ZipFile(archive) as zipped:
            for info, base in members:
                try:
                    complete = _copy_capped(zipped, info, staged / base)
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:  # bad CRC, encrypted...
                    echo(f"skipped {info.filename}: it could not be unpacked ({error})")
                    (staged / base).unlink(missing_ok=True)
                    continue
                if not complete:
                    echo(f"skipped {info.filename}: it unpacks to more than {MAX_ENTRY_BYTES // 2**20} MiB")
                    (staged / base).unlink()
                    continue
                students.add(plugin.collect(base)["student_id"])
        result = capture_log(app)
    if not result["success"]:
        raise CourseError(f"zip_collect failed for {archive}:\n{result.get('error') or result.get('log')}")
    collected = [s for s in sorted(students) if s in course.submitted_students(assignment)]
    if not collected:
        raise CourseError(f"no notebook in {archive} has a name like <student>_..._<notebook>.ipynb "
                          f"(FileNameCollectorPlugin.named_regexp in nbgrader_config.py): nothing was collected")
    return collected
