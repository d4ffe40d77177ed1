"""What happened to each submission in the last ``eep590 autograde``: one JSON record per student in
``reports/<hw>/records/``, read by feedback, the class report and export.

A notebook's status says whether its gradebook scores are final:

- ``graded``: it ran and was scored;
- ``missing``, ``corrupt``, ``failed``: the student's notebook could not be graded (not submitted, not a
  notebook, nbgrader could not process it): it scores 0, with the reason in words;
- ``ungraded``: not graded yet, or the *grader* failed (a kernel that never started, a run stopped
  before this notebook was scored): its gradebook scores are not a grade, and export says so.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .course import Course

GRADED, MISSING, CORRUPT, FAILED, UNGRADED = "graded", "missing", "corrupt", "failed", "ungraded"
STATUSES = (GRADED, MISSING, CORRUPT, FAILED, UNGRADED)
STUDENT_FAULTS = (MISSING, CORRUPT, FAILED)  # scored 0, with the reason
# flag kinds besides the statuses, the execution problems (timeout, memory, crash, disk, processes, wall-time,
# not-run) and the tampering kinds (edited-locked-cell, deleted-cell)
UNSAFE_FILE = "unsafe-file"  # a symlink, FIFO or device in the submission: skipped, never opened
SUSPICIOUS_CODE = "suspicious-code"  # scan.scan_notebook found code worth a TA's look
REPAIRED_METADATA = "repaired-metadata"  # broken nbgrader metadata was repaired in the staged copy


@dataclass
class NotebookRecord:
    """What happened to one notebook of one submission."""

    notebook: str
    status: str = UNGRADED  # graded | missing | corrupt | failed | ungraded
    reason: str = ""  # why it was not graded, in words
    problems: list = field(default_factory=list)  # [kind, message]: timeout, memory, crash, disk, processes, wall-time, not-run
    tampered: list = field(default_factory=list)  # [kind, grade_id]: edited-locked-cell, deleted-cell
    suspicious: list = field(default_factory=list)  # scan.scan_notebook entries
    repaired: list = field(default_factory=list)  # what was wrong with the notebook's nbgrader metadata, in words
    kernel_start_s: float = 0.0
    seconds: dict = field(default_factory=dict)  # role (given, student, test) -> seconds of execution
    restarts: int = 0

    @property
    def flags(self) -> list[str]:
        """Sorted kinds of what in this notebook is worth a TA's look."""
        kinds = {kind for kind, _ in self.problems} | {kind for kind, _ in self.tampered}
        if self.status != GRADED:
            kinds.add(self.status)
        if self.suspicious:
            kinds.add(SUSPICIOUS_CODE)
        if self.repaired:
            kinds.add(REPAIRED_METADATA)
        return sorted(kinds)


@dataclass
class StudentRecord:
    student: str
    assignment: str
    sandboxed: bool
    notebooks: dict = field(default_factory=dict)  # name -> NotebookRecord
    skipped_files: list = field(default_factory=list)  # [relative path, what it was]: links and special files
    seed: int = 0  # the run's seed: the judges' inputs (regrading with it reproduces them)

    @property
    def flags(self) -> list[str]:
        """Sorted kinds of everything worth a TA's look in this submission (whether the class was
        sandboxed is said once per class, not per student)."""
        kinds = {kind for rec in self.notebooks.values() for kind in rec.flags}
        if self.skipped_files:
            kinds.add(UNSAFE_FILE)
        return sorted(kinds)

    @property
    def final(self) -> bool:
        """True when every notebook's gradebook scores are a grade (nothing left ungraded)."""
        return all(rec.status != UNGRADED for rec in self.notebooks.values())

    def to_json(self) -> dict:
        data = asdict(self)
        data["flags"] = self.flags
        return data

    @classmethod
    def from_json(cls, data: dict) -> StudentRecord:
        notebooks = {name: NotebookRecord(**rec) for name, rec in data["notebooks"].items()}
        return cls(student=data["student"], assignment=data["assignment"], sandboxed=data["sandboxed"],
                   notebooks=notebooks, skipped_files=data.get("skipped_files", []), seed=data.get("seed", 0))


def records_dir(course: Course, assignment: str) -> Path:
    return course.reports_dir / assignment / "records"


def write_record(course: Course, record: StudentRecord) -> None:
    """Write one student's record atomically (a run killed mid-write leaves the previous one)."""
    out = records_dir(course, record.assignment)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{record.student}.json.tmp"
    tmp.write_text(json.dumps(record.to_json(), indent=1))
    tmp.replace(out / f"{record.student}.json")


def load_records(course: Course, assignment: str) -> dict[str, StudentRecord]:
    """``{student: StudentRecord}`` from the last autograde of ``assignment``."""
    directory = records_dir(course, assignment)
    records = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = StudentRecord.from_json(json.loads(path.read_text()))
        records[record.student] = record
    return records
