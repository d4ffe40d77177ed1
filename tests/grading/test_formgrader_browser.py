"""End to end in a real browser: a TA grades a written answer in nbgrader's formgrader, and the grade
reaches ``eep590 export`` and the comment reaches the student's feedback.

The Jupyter server (with the formgrader extension) runs on 127.0.0.1 on a free port, with a token, in a
scratch course; Playwright drives Debian's ``chromium`` (``.ci/run`` installs both). Skipped, saying why,
where the ``playwright`` package or a chromium binary is missing.
"""
import csv
import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course
from eep590_utils.grading.feedback import generate_feedback
from eep590_utils.grading.flags import flag_in_gradebook
from eep590_utils.grading.release import release
from eep590_utils.grading.settings import Limits

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import WRITTEN_ID, make_toy_course, solved, submit  # noqa: E402

BIN = Path(sys.executable).parent
CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
                 if p and Path(p).exists()), None)
ANSWER = "Order does not matter when counting: DEMO STUDENT ANSWER."
COMMENT = "Right idea; cite commutativity of counting. FORMGRADER COMMENT"

pytestmark = pytest.mark.slow


def _require_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]' installs it)")
    if not CHROMIUM:
        pytest.skip("no chromium binary (Debian: apt-get install chromium; .ci/run installs it)")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    _require_browser()
    os.environ["PATH"] = str(BIN) + os.pathsep + os.environ["PATH"]
    root = make_toy_course(tmp_path_factory.mktemp("formgrader") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "demo_student", solved(release_nb, answer=ANSWER))
    submit(root, "blank_student", release_nb)
    records = autograde(course, "toy", workers=1, limits=Limits(cell_timeout=20, notebook_timeout=240, memory_bytes=2**30),
                        echo=lambda *_: None, **({"sandbox": False} if not shutil.which("bwrap") else {}))
    flag_in_gradebook(course, "toy", records)
    return course


@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    """``(base_url, token)`` of a Jupyter server with formgrader, cwd = the course; stopped afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "PATH": str(BIN) + os.pathsep + os.environ["PATH"]}
    log = open(runtime / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "jupyter"), "server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course.root}"]
                            + (["--allow-root"] if os.geteuid() == 0 else []),
                            cwd=course.root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Jupyter server did not start:\n{(runtime / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def test_a_ta_grades_a_written_answer_in_formgrader(course, server, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = server
    with course.gradebook() as gb:
        notebook_id = gb.find_submission_notebook("toy", "toy", "demo_student").id
        assert gb.find_grade(WRITTEN_ID, "toy", "toy", "demo_student").needs_manual_grade
        assert not gb.find_grade(WRITTEN_ID, "toy", "toy", "blank_student").needs_manual_grade  # blank: 0, no TA
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{base}/formgrader?token={token}")  # the token logs the browser in (cookie)
            page.goto(f"{base}/formgrader/submissions/{notebook_id}/")
            score = page.locator(f"input.score#{WRITTEN_ID}")
            score.wait_for()
            # the grader sees the question's rubric (restored mark scheme) right above the answer
            body = page.inner_text("#notebook")
            assert "SECRET RUBRIC TEXT" in body and ANSWER in body
            assert body.index("SECRET RUBRIC TEXT") < body.index(ANSWER)
            with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as put:
                score.fill("1.5")
                score.press("Tab")  # formgrader saves a score on change
            assert put.value.ok
            comment = page.locator(f"textarea#{WRITTEN_ID}-comment")
            with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT") as put:
                comment.fill(COMMENT)
                comment.press("Tab")
            assert put.value.ok
        finally:
            browser.close()

    with course.gradebook() as gb:
        grade = gb.find_grade(WRITTEN_ID, "toy", "toy", "demo_student")
        assert grade.manual_score == 1.5 and not grade.needs_manual_grade
    out = tmp_path / "grades.csv"
    assert subprocess.run([str(BIN / "eep590"), "--course", str(course.root), "export", "--out", str(out)],
                          capture_output=True, text=True, timeout=300).returncode == 0  # nothing pending any more
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert float(rows["demo_student"]["toy"]) == 4 + 1.5 and rows["demo_student"]["needs_manual_grading"] == "0"
    assert float(rows["blank_student"]["toy"]) == 0
    generate_feedback(course, "toy", "demo_student")
    page = (course.path("feedback", "demo_student", "toy") / "toy.html").read_text()
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert COMMENT in text and "1.5 / 2.0" in text and "not graded yet" not in text
    assert "SECRET RUBRIC TEXT" not in text
