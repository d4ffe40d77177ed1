"""The ``eep590`` command (eep590_utils/grading/cli.py): exit status 0 on success, 1 with a message on
stderr that says what is wrong (never a traceback) on a mistake, on a tiny toy course."""
import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from eep590_utils.grading.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import make_toy_course, solved  # noqa: E402

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # nbgrader runs alembic
SUBCOMMANDS = ("release", "collect", "autograde", "feedback", "report", "export", "demo")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A toy course released with ``eep590 release toy``: (root, exit status, stdout, stderr)."""
    root = make_toy_course(tmp_path_factory.mktemp("cli") / "course")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["--course", str(root), "release", "toy"])
    return root, status, out.getvalue(), err.getvalue()


def eep590(capsys, root, *args):
    status = main(["--course", str(root), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_release_succeeds_and_says_nothing_leaked(released):
    root, status, out, err = released
    assert status == 0, err
    assert "release/toy" in out and "toy.ipynb" in out
    assert "no solution or hidden test leaked" in out
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in release_nb.cells)
    assert "return a + b" not in text and "BEGIN HIDDEN TESTS" not in text and "SECRET RUBRIC TEXT" not in text


def test_release_of_an_unknown_assignment_names_it(released, capsys):
    status, out, err = eep590(capsys, released[0], "release", "nosuch")
    assert status == 1
    assert "nosuch" in err and "toy" in err  # names the missing one and the ones there are
    assert "Traceback" not in err and out == ""


def test_release_needs_an_assignment_or_all(released, capsys):
    status, out, err = eep590(capsys, released[0], "release")
    assert status == 1
    assert "--all" in err and "assignment" in err


def test_autograde_before_any_submission_says_so(released, capsys):
    status, out, err = eep590(capsys, released[0], "autograde", "toy")
    assert status == 1
    assert "no submissions" in err and "submitted" in err
    assert "Traceback" not in err


def test_autograde_before_release_says_to_release(tmp_path, capsys):
    root = make_toy_course(tmp_path / "unreleased")
    status, out, err = eep590(capsys, root, "autograde", "toy")
    assert status == 1
    assert "eep590 release toy" in err


def test_report_before_autograde_says_to_autograde(released, capsys):
    status, out, err = eep590(capsys, released[0], "report", "toy")
    assert status == 1
    assert "no graded submissions" in err and "eep590 autograde toy" in err
    assert "Traceback" not in err


def test_export_writes_points_possible(released, capsys, tmp_path):
    out_csv = tmp_path / "f.csv"
    status, out, err = eep590(capsys, released[0], "export", "--out", str(out_csv))
    assert status == 0, err
    assert "0 student(s)" in out and str(out_csv) in out
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "the CSV has no rows"
    assert rows[0]["student_id"] == "Points Possible"
    # toy: add visible 1 + add hidden 2 + mul visible 1 + written answer 2
    assert float(rows[0]["toy"]) == 6 and float(rows[0]["total"]) == 6
    assert len(rows) == 1  # nobody has submitted yet


def test_collect_folder_from_the_command_line(released, capsys, tmp_path):
    root = released[0]
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    (tmp_path / "downloads" / "dora").mkdir(parents=True)
    nbformat.write(solved(release_nb), tmp_path / "downloads" / "dora" / "toy.ipynb")
    try:
        status, out, err = eep590(capsys, root, "collect", "toy", "--folder", str(tmp_path / "downloads"))
        assert status == 0, err
        assert "1 submission(s) of toy" in out and "dora" in out
        assert (root / "submitted" / "dora" / "toy" / "toy.ipynb").is_file()
        status, out, err = eep590(capsys, root, "collect", "toy", "--folder", str(tmp_path / "nothing_here"))
        assert status == 1 and "nothing_here" in err
    finally:
        shutil.rmtree(root / "submitted", ignore_errors=True)


def test_a_course_folder_without_configuration_is_an_error(tmp_path, capsys):
    status, out, err = eep590(capsys, tmp_path / "no_course_here", "release", "toy")
    assert status == 1
    assert "nbgrader_config.py" in err


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out, f"--help does not mention {command}"


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: eep590" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "eep590"
    assert script.is_file(), f"{script} is missing: is the package installed (pip install -e .)?"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in SUBCOMMANDS:
        assert command in result.stdout
