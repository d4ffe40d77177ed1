"""Shared fixtures: paths, the offline data copy, and a scratch nbgrader course for grading notebooks."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("MPLBACKEND", "Agg")
# Ray clusters in tests stay on 127.0.0.1 (ray 2.60 otherwise advertises the machine's own address)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
if SHARED_DATA.is_dir():
    os.environ.setdefault("EEP590_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data`` beside the repository (MNIST idx files, CIFAR-10 JPEG archive)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the offline data copy is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def scratch_course(tmp_path_factory):
    """A copy of the course (source/ and nbgrader_config.py) in a temporary directory.

    ``scratch_course.autograde(hw, {student: {notebook_name: nb}})`` grades submissions with
    nbgrader and returns ``{student: {notebook: {grade_id: (score, max_score)}}}``.
    """
    from nbgrader_harness import ScratchCourse

    root = tmp_path_factory.mktemp("course")
    return ScratchCourse(root)
