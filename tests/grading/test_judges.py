"""Grades are decided outside the student's kernel (issue 11): every technique that let one line of
student code change its grade, each as its own submission, gains 0 points over its control student
and leaks no hidden-test text; the wire lets only plain data through."""
import base64
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from eep590_utils.grading import wire
from eep590_utils.grading.autograde import autograde
from eep590_utils.grading.course import Course
from eep590_utils.grading.feedback import generate_feedback
from eep590_utils.grading.judge import Fail, ProbeError, Remote, Score, Student, StudentError, load_judges, verdict
from eep590_utils.grading.release import release
from eep590_utils.grading.sandbox import bwrap_path
from eep590_utils.grading.settings import Limits

sys.path.insert(0, str(Path(__file__).parent))
from toy_course import HIDDEN_CHECK, make_toy_course, solved, submit  # noqa: E402

os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
LIMITS = Limits(cell_timeout=20, notebook_timeout=180, memory_bytes=2**30)
WRONG = "return 0"  # the control student: add and mul both wrong, 0 points

# Each hack runs in the student's add cell, before the (wrong) functions; it must gain nothing.
HACKS = {
    "showtraceback": "get_ipython().showtraceback = lambda *a, **k: None",
    "custom_exc": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "clear_output_hook": "from IPython.display import clear_output\nget_ipython().events.register('post_run_cell', lambda r: clear_output())",
    "input_transformer": "get_ipython().input_transformers_post.append(lambda lines: [l for l in lines if 'assert' not in l and 'check_' not in l and 'raise' not in l])",
    "ast_transformer": ("import ast\nclass Gut(ast.NodeTransformer):\n    def visit_Module(self, node):\n        node.body = []\n        return node\n"
                        "get_ipython().ast_transformers.append(Gut())"),
    "run_cell_patch": "ip = get_ipython()\nip.run_cell = lambda *a, **k: None",
    "allclose_true": "import numpy as np, torch\nnp.allclose = lambda *a, **k: True\ntorch.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None",
    "abs_zero": "import numpy as np, builtins\nnp.abs = lambda x, *a, **k: np.zeros_like(x)\nbuiltins.abs = lambda x: 0\nbuiltins.all = lambda x: True",
    "conv2d_patch": "import sys, types, torch.nn.functional as F\nF.conv2d = lambda *a, **k: 0\nsys.modules['torch.nn.functional'] = types.ModuleType('fake')",
    "lying_proxies": "class Lie:\n    def __getattr__(self, name):\n        return lambda *a, **k: True\nnp = Lie()\ntorch = Lie()",
    "reload_noop": "import importlib\nimportlib.reload = lambda m: m",
    "meta_path": ("import sys, types\nclass Finder:\n    def find_spec(self, name, path=None, target=None):\n        return None\n"
                  "sys.meta_path.insert(0, Finder())\nfor name in [m for m in sys.modules if m.startswith('eep590_utils.checks')]:\n"
                  "    fake = types.ModuleType(name)\n    fake.check_close = lambda *a, **k: None\n    sys.modules[name] = fake"),
    "always_equal": "class Liar(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\nWRONG_ANSWER = Liar('x')",
    "frame_reader": ("import inspect\ndef peek():\n    frame = inspect.currentframe().f_back\n    while frame:\n"
                     "        for key in ('expected', 'want', 'reference'):\n            if key in frame.f_locals:\n"
                     "                return frame.f_locals[key]\n        frame = frame.f_back\n    return 0"),
    "startup_file": ("import os, pathlib\nd = pathlib.Path(get_ipython().profile_dir.startup_dir)\nd.mkdir(parents=True, exist_ok=True)\n"
                     "(d / '00-clear.py').write_text('from IPython.display import clear_output\\n"
                     "get_ipython().events.register(\"post_run_cell\", lambda r: clear_output())\\n')\nos.kill(os.getpid(), 9)"),
    "source_leak": ("import base64\nseen = []\nget_ipython().events.register('pre_run_cell', lambda info: seen.append(info.raw_cell))\n"
                    "get_ipython().events.register('post_run_cell', lambda r: print(base64.b64encode('\\n'.join(seen).encode()).decode()))"),
}
FUNCTIONS = {  # how each hack's add and mul answer (all wrong, but in the hack's own way)
    "always_equal": ("return WRONG_ANSWER", "return WRONG_ANSWER"),
    "frame_reader": ("return peek()", "return peek()"),
}


def _hostile(release_nb, name):
    add, mul = FUNCTIONS.get(name, (WRONG, WRONG))
    nb = solved(release_nb, add=add, mul=mul)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "add")
    cell.source = HACKS[name] + "\n\n" + cell.source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_toy_course(tmp_path_factory.mktemp("judges") / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "control", solved(release_nb, add=WRONG, mul=WRONG))
    submit(root, "honest", solved(release_nb))
    for name in HACKS:
        submit(root, name, _hostile(release_nb, name))
    records = autograde(course, "toy", workers=2, limits=LIMITS, echo=lambda *_: None, sandbox=bwrap_path() is not None)
    return course, records


def _score(course, student):
    with course.gradebook() as gb:
        return sum(g.score for g in gb.find_submission_notebook("toy", "toy", student).grades
                   if g.name in ("add_visible", "add_hidden", "mul_visible"))


@pytest.mark.slow
def test_the_judges_give_the_honest_student_full_marks_and_the_control_none(graded):
    course, _ = graded
    assert _score(course, "honest") == 4 and _score(course, "control") == 0


@pytest.mark.slow
@pytest.mark.parametrize("hack", sorted(HACKS))
def test_no_hack_gains_a_point_over_its_control(graded, hack):
    course, records = graded
    assert records[hack].notebooks["toy"].status == "graded"
    assert _score(course, hack) == _score(course, "control") == 0


@pytest.mark.slow
def test_no_hidden_test_text_reaches_feedback_in_any_encoding(graded):
    course, _ = graded
    generate_feedback(course, "toy", "source_leak")
    page = (course.path("feedback", "source_leak", "toy") / "toy.html").read_text()
    for secret in (HIDDEN_CHECK, "torch.randint(1, 100", "generator=gen"):  # the hidden cell and the judge code
        for form in (secret, base64.b64encode(secret.encode()).decode()[:24], secret.encode().hex()[:24]):
            assert form not in page


@pytest.mark.slow
def test_judges_and_their_results_never_reach_the_kernel_folder_or_release(graded):
    course, _ = graded
    assert not (course.path("release", assignment="toy") / "judges").exists()
    assert not any("judges" in p.parts for p in course.path("autograded").rglob("*"))


# ------------------------------------------------------------------------------------------------
# Without a kernel: the wire and the verdicts


@pytest.mark.parametrize("value", [None, True, 3, -2.5, float("nan"), "text", [1, (2, 3)], {"a": [1.0]},
                                   np.arange(6, dtype=np.float32).reshape(2, 3), torch.ones(2, 2, dtype=torch.float64)])
def test_plain_data_crosses_the_wire(value):
    back = wire.loads(wire.dumps(value))
    if isinstance(value, (np.ndarray, torch.Tensor)):
        assert type(back) is type(value) and back.dtype == value.dtype and (back == value).all()
    elif isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value


def test_nothing_but_plain_data_crosses():
    with pytest.raises(wire.WireError):
        wire.dumps(object())
    with pytest.raises(wire.WireError, match="only numbers"):
        wire.decode({"__ndarray__": base64.b64encode(b"x" * 8).decode(), "dtype": "|O", "shape": [1]})
    with pytest.raises(wire.WireError, match="do not match"):
        wire.decode({"__ndarray__": base64.b64encode(b"x" * 7).decode(), "dtype": "<f8", "shape": [1]})
    with pytest.raises(wire.WireError):
        wire.loads("{not json")
    refs = []
    assert wire.decode(wire.encode(object(), refs), remote=Remote).type_name == "object" and len(refs) == 1


def _student(answers):
    return Student(lambda request: answers.pop(0))


def test_verdicts_from_answers():
    def judge_fn(student, gen):
        if student.f(1) != 2:
            raise Fail("f(1) should be 2")

    assert verdict(judge_fn, _student(['{"ok": 2}']), 1) == (True, "", "")
    assert verdict(judge_fn, _student(['{"ok": 3}']), 1) == (False, "f(1) should be 2", "")
    partial = verdict(lambda student, gen: Score(student.acc() / 0.8, "accuracy 60%"), _student(['{"ok": 0.6}']), 1)
    assert partial == (True, "accuracy 60%", "") and partial.fraction == pytest.approx(0.75)
    assert verdict(lambda student, gen: 7.0, _student([]), 1).fraction == 1.0
    assert verdict(lambda student, gen: Score(0, "none"), _student([]), 1) == (False, "none", "")
    passed, message, _ = verdict(judge_fn, _student(['{"error": {"ename": "ValueError", "evalue": "bad"}}']), 1)
    assert not passed and message == "your code raised ValueError: bad"
    passed, message, _ = verdict(judge_fn, _student([None]), 1)
    assert not passed and "no answer" in message
    passed, message, _ = verdict(judge_fn, _student(['{"ok": {"__ndarray__": "!!", "dtype": "<f8", "shape": [1]}}']), 1)
    assert not passed and "malformed" in message


def test_judges_load_from_their_file(tmp_path):
    path = tmp_path / "nb.py"
    path.write_text("from eep590_utils.grading.judge import judge\n@judge('a')\ndef a(student, gen):\n    pass\n")
    assert list(load_judges(path)) == ["a"]
    assert load_judges(tmp_path / "missing.py") == {}
    with pytest.raises(StudentError):
        raise StudentError("E", "m")
    assert issubclass(ProbeError, RuntimeError)


def test_plain_nbgrader_autograde_stops_instead_of_giving_hidden_points(tmp_path):
    from nbgrader.apps import NbGraderAPI

    root = make_toy_course(tmp_path / "course")
    course = Course(root)
    release(course, "toy")
    release_nb = nbformat.read(root / "release" / "toy" / "toy.ipynb", as_version=4)
    submit(root, "carol", solved(release_nb, add=WRONG, mul=WRONG))
    result = NbGraderAPI(coursedir=course.coursedir, config=course.config).autograde("toy", "carol")
    assert not result["success"] and "eep590 autograde" in (result.get("log", "") + result.get("error", ""))
    with course.gradebook() as gb:
        grades = gb.find_submission_notebook("toy", "toy", "carol").grades
        assert sum(g.score for g in grades) == 0  # the hidden test was not given away


SOURCE_NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "source").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in SOURCE_NOTEBOOKS])
def test_every_test_cell_of_every_notebook_has_a_judge_and_no_hidden_code(path):
    nb = nbformat.read(path, as_version=4)
    tests = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.cell_type == "code"
             and c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
    judges = load_judges(path.parent / "judges" / f"{path.stem}.py")
    assert sorted(judges) == sorted(tests), (f"test cells without a judge: {sorted(set(tests) - set(judges))}; "
                                             f"judges without a test cell: {sorted(set(judges) - set(tests))}")
    assert not any("BEGIN HIDDEN TESTS" in c.source for c in nb.cells)  # hidden tests live in the judges alone
