"""Student code in the sandbox sees its own submission and the data, nothing else of the course, and no network."""
import os
import socket
import threading

import pytest
from conftest import REPO
from nbformat.v4 import new_code_cell, new_notebook

from eep590_utils.grading.execute import NotebookRunner
from eep590_utils.grading.sandbox import Sandbox, bwrap_path, kernel_data_env, sandbox_readonly_paths
from eep590_utils.grading.settings import Limits

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")

PROBE = '''
import os, socket
def probe(path, write=False):
    try:
        if write:
            with open(path, "a") as f:
                f.write("tampered")
        elif os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        return "OK"
    except OSError as error:
        return type(error).__name__
for label, path, write in PATHS:
    print(label, probe(path, write))
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=3)
    print("network OK")
except OSError as error:
    print("network", type(error).__name__)
'''


@pytest.fixture(scope="module")
def course_tree(tmp_path_factory):
    """A course directory with secrets around a student's working folder, and a listening TCP port."""
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "hw1").mkdir(parents=True)
    (root / "source" / "hw1" / "solution.ipynb").write_text("SOLUTION")
    (root / "gradebook.db").write_text("GRADES")
    (root / "submitted" / "other" / "hw1").mkdir(parents=True)
    (root / "submitted" / "other" / "hw1" / "answer.ipynb").write_text("OTHER STUDENT")
    work = root / "autograded" / "me" / "hw1"
    work.mkdir(parents=True)
    (work / "model.pt").write_text("MINE")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    yield root, work, server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def probed(course_tree):
    root, work, port = course_tree
    data = os.environ.get("EEP590_DATA", "")
    paths = [
        ("own_file", str(work / "model.pt"), False),
        ("own_write", str(work / "new.txt"), True),
        ("source", "../../../source/hw1/solution.ipynb", False),
        ("source_abs", str(root / "source" / "hw1" / "solution.ipynb"), False),
        ("gradebook", "../../../gradebook.db", False),
        ("gradebook_write", str(root / "gradebook.db"), True),
        ("other_student", str(root / "submitted" / "other" / "hw1" / "answer.ipynb"), False),
        ("kit_source", str(REPO / "source"), False),
        ("kit_tests", str(REPO / "tests" / "conftest.py"), False),
        ("package_write", os.path.join(os.path.dirname(os.path.abspath(__import__("eep590_utils").__file__)), "x.py"), True),
        ("data", os.path.join(data, "README.md") if data else "/nonexistent", False),
    ]
    source = PROBE.replace("PATHS", repr(paths)).replace("PORT", str(port))
    nb = new_notebook(cells=[new_code_cell(source), new_code_cell("import eep590_utils\nprint('import OK')")])
    result = NotebookRunner(nb, work, limits=Limits(cell_timeout=60), sandbox_readonly=sandbox_readonly_paths(),
                            env=kernel_data_env()).run()
    text = "".join(o.get("text", "") for cell in result.notebook.cells for o in cell.outputs)
    return dict(line.split(" ", 1) for line in text.splitlines()), root


@pytest.mark.parametrize("label", ["source", "source_abs", "gradebook", "other_student", "kit_source", "kit_tests"])
def test_course_files_are_invisible(probed, label):
    results, _ = probed
    assert results[label] in ("FileNotFoundError", "PermissionError"), f"{label} was readable: {results[label]}"


def test_writes_outside_the_submission_never_reach_the_real_files(probed):
    # such writes fail or land in the sandbox's private, throw-away /tmp
    results, root = probed
    assert (root / "gradebook.db").read_text() == "GRADES"
    package = os.path.dirname(os.path.abspath(__import__("eep590_utils").__file__))
    assert results["package_write"] != "OK" and not os.path.exists(os.path.join(package, "x.py"))


def test_own_submission_and_data_are_usable(probed):
    results, _ = probed
    assert results["own_file"] == "OK" and results["own_write"] == "OK"
    assert results["import"] == "OK"
    if os.environ.get("EEP590_DATA"):
        assert results["data"] == "OK"


def test_no_network(probed):
    results, _ = probed
    assert results["network"] != "OK"


def test_gpu_devices_are_exposed_only_to_a_notebook_that_needs_a_gpu(tmp_path, monkeypatch):
    from eep590_utils.grading import sandbox

    monkeypatch.setattr(sandbox, "gpu_devices", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    plain = Sandbox(tmp_path, bwrap="/usr/bin/bwrap").wrap(["python"])
    gpu = Sandbox(tmp_path, bwrap="/usr/bin/bwrap", gpu=True).wrap(["python"])
    assert "--dev-bind" not in plain
    assert ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0"] == gpu[gpu.index("--dev-bind"):gpu.index("--dev-bind") + 3]
