"""The course's folders, id and gradebook URL without nbgrader, as nbgrader's ``CourseDirectory`` gives
them; and the commands that only read grades (report, export) never import nbgrader, nbformat or torch."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from nbgrader.coursedir import CourseDirectory

from eep590_utils.grading.course import DEFAULT_DIRECTORIES, Course

sys.path.insert(0, str(Path(__file__).parent))
from gradebook_data import fill  # noqa: E402

HEAVY = ("nbgrader", "nbformat", "nbconvert", "nbclient", "torch", "jupyter_client")


def _config(root, lines=""):
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n" + lines)
    return root


@pytest.mark.parametrize("lines", [
    "",
    "c.CourseDirectory.course_id = 'eep590'\nc.CourseDirectory.source_directory = 'instructor'\n"
    "c.CourseDirectory.submitted_directory = 'in'\nc.CourseDirectory.autograded_directory = 'graded'\n"
    "c.CourseDirectory.release_directory = 'out'\nc.CourseDirectory.feedback_directory = 'fb'\n"
    "c.CourseDirectory.db_url = 'sqlite:////srv/grades.db'\n",
])
def test_folders_id_and_gradebook_are_nbgraders(tmp_path, lines):
    course = Course(_config(tmp_path / "course", lines))
    coursedir = CourseDirectory(config=course.config)
    for kind in DEFAULT_DIRECTORIES:
        assert course.path(kind, "s1", "hw1") == Path(coursedir.format_path(getattr(coursedir, f"{kind}_directory"), "s1", "hw1"))
        assert course.path(kind) == Path(coursedir.root) / getattr(coursedir, f"{kind}_directory")
    assert course.db_url == coursedir.db_url
    assert course.course_id == coursedir.course_id
    with pytest.raises(ValueError, match="unknown course folder 'solutions'"):
        course.path("solutions")


def test_nbgrader_defaults_are_pinned():
    traits = CourseDirectory.class_traits()
    assert DEFAULT_DIRECTORIES == {kind: traits[f"{kind}_directory"].default() for kind in DEFAULT_DIRECTORIES}


def test_the_kits_config_reads_without_nbgrader_and_gives_nbgrader_its_settings():
    """`eep590` reads nbgrader_config.py without importing nbgrader; nbgrader's own commands (which import
    nbgrader first) get the kit's feedback redaction and the refusal of plain autograde."""
    probe = ("import sys, json\n{first}\nfrom eep590_utils.grading.course import Course\n"
             "c = Course(sys.argv[1]).config\n"
             "print(json.dumps([sorted({{m.split('.')[0] for m in sys.modules}} & set(sys.argv[2:])),"
             " [getattr(p, '__name__', p) for p in c.GenerateFeedback.get('preprocessors', [])],"
             " [getattr(p, '__name__', p) for p in c.Autograde.get('autograde_preprocessors', [])[:2]]]))")
    alone = subprocess.run([sys.executable, "-c", probe.format(first=""), str(REPO), *HEAVY],
                           capture_output=True, text=True, check=True)
    assert json.loads(alone.stdout) == [[], [], []]
    under_nbgrader = subprocess.run([sys.executable, "-c", probe.format(first="import nbgrader.apps"), str(REPO), *HEAVY],
                                    capture_output=True, text=True, check=True)
    imported, feedback, autograde = json.loads(under_nbgrader.stdout)
    assert "nbgrader" in imported  # the probe sees imports: nbgrader's absence above is real
    assert feedback[0] == "RedactHiddenTests" and "ClearHiddenTests" in feedback and "ClearMarkScheme" in feedback
    assert autograde == ["JudgesRequired", "Execute"]


def test_report_and_export_never_import_nbgrader_nbformat_or_torch(tmp_path):
    db = tmp_path / "gradebook.db"
    fill(f"sqlite:///{db}")
    root = _config(tmp_path / "course", f"c.CourseDirectory.db_url = 'sqlite:///{db}'\n")
    (root / "source" / "hw1").mkdir(parents=True)
    script = ("import sys\nfrom eep590_utils.grading.cli import main\n"
              "codes = [main(['report', 'hw1']), main(['export', '--out', 'grades.csv', '--allow-pending'])]\n"
              "print(codes, sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))")
    done = subprocess.run([sys.executable, "-c", script, *HEAVY], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[0, 0] []"
    assert (root / "reports" / "hw1" / "index.html").is_file() and (root / "reports" / "hw1" / "questions_a.png").is_file()
    rows = list(csv.DictReader(open(root / "grades.csv")))
    assert [r["student_id"] for r in rows] == ["Points Possible", "ann", "bo", "cy", "dee"]
    assert rows[2]["hw1"] == "PENDING (2.25 so far)"  # bo: 1 + 3 points, 1.75 late penalty, q2 and q3 pending
