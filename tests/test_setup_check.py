"""The set-up check: ``eep590_utils.setup_check`` (what is missing, one line each, what to do) and the first code
cell that ``tests/notebook_setup.py`` puts at the top of every notebook (works without the kit; installs it on
Colab; installs and checks nothing at grading time)."""
import gzip
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import notebook_setup
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbgrader_harness import REPO

import eep590_utils.data
from eep590_utils.setup_check import SetupError, check_setup, setup_problems

NOTEBOOKS = sorted(path for hw in ("hw1", "hw2", "hw3") for path in (REPO / "source" / hw).glob("*.ipynb"))
NB_IDS = [f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS]


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No dataset anywhere: EEP590_DATA and the cache are empty folders, the working directory is an empty folder."""
    for name in ("data_env", "cache", "nb"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("EEP590_DATA", str(tmp_path / "data_env"))
    monkeypatch.setenv("EEP590_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path / "nb")
    return tmp_path


def _fake_mnist(directory):
    (directory / "mnist").mkdir(parents=True, exist_ok=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(directory / "mnist" / f"{stem}.gz", "wb") as f:
            f.write(b"\0")


def _fake_cifar10(directory):
    (directory / "cifar10").mkdir(parents=True, exist_ok=True)
    (directory / "cifar10" / "cifar10-jpg.tar.gz").write_bytes(b"\0")


# ------------------------------------------------------------------------------------------ check_setup


@pytest.mark.parametrize("name, label, loader", [("mnist", "MNIST", "load_mnist"), ("cifar10", "CIFAR-10", "load_cifar10")])
def test_a_missing_dataset_is_one_line_with_both_ways_to_get_it(nowhere, name, label, loader):
    error = check_setup(datasets=[name])
    assert isinstance(error, SetupError)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{label} not found")
    assert f"$EEP590_DATA={nowhere / 'data_env'}" in message and "./data" in message  # where it looked
    assert "set EEP590_DATA" in message and f"{loader}(download=True)" in message  # offline and online


def test_a_missing_file_is_one_line_naming_it(nowhere):
    error = check_setup(files=["compression_cnn.pt"])
    message = str(error)
    assert "\n" not in message
    assert message.startswith("compression_cnn.pt is missing next to this notebook")
    assert "download the whole assignment folder, not just the .ipynb" in message


def test_several_missing_files_share_one_line_and_each_dataset_has_its_own(nowhere):
    (nowhere / "nb" / "images").mkdir()
    (nowhere / "nb" / "images" / "a.png").write_bytes(b"png")
    problems = setup_problems(datasets=["cifar10", "mnist"], files=["images/a.png", "images/b.png", "model.pt"])
    assert len(problems) == 3
    assert problems[0].startswith("images/b.png, model.pt are missing next to this notebook")
    assert problems[1].startswith("CIFAR-10 not found") and problems[2].startswith("MNIST not found")
    assert str(check_setup(datasets=["cifar10", "mnist"], files=["images/b.png"])).count("\n") == 2


def test_everything_present_prints_one_line_and_returns_none(nowhere, capsys):
    _fake_mnist(nowhere / "data_env")
    _fake_cifar10(nowhere / "nb" / "data")  # ./data counts too
    (nowhere / "nb" / "images").mkdir()
    (nowhere / "nb" / "images" / "a.png").write_bytes(b"png")
    (nowhere / "nb" / "model.pt").write_bytes(b"pt")
    assert check_setup(datasets=["mnist", "cifar10"], files=["images/a.png", "model.pt"]) is None
    assert capsys.readouterr().out == "Set-up OK: MNIST, CIFAR-10, images/a.png, model.pt found.\n"
    assert check_setup() is None
    assert capsys.readouterr().out == "Set-up OK.\n"


def test_an_incomplete_copy_says_so(nowhere):
    (nowhere / "data_env" / "mnist").mkdir()
    with gzip.open(nowhere / "data_env" / "mnist" / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0")
    (problem,) = setup_problems(datasets=["mnist"])
    assert problem.startswith("MNIST: ") and "no matching t10k-labels" in problem and "complete copy" in problem


def test_unknown_dataset_is_a_programming_error(nowhere):
    with pytest.raises(ValueError, match="unknown dataset"):
        setup_problems(datasets=["imagenet"])


def test_download_fetches_a_missing_dataset_with_the_loader(nowhere, monkeypatch):
    calls = []
    monkeypatch.setattr(eep590_utils.data, "load_mnist", lambda download: calls.append(download))
    assert check_setup(datasets=["mnist"], download=True) is None
    assert calls == [True]
    assert setup_problems(datasets=["mnist"], download=False)  # without download it stays missing


def test_a_failed_download_is_one_line(nowhere, monkeypatch):
    def offline(download):
        raise eep590_utils.data.DatasetNotFoundError("MNIST not found.\nline two") from OSError("no network")

    monkeypatch.setattr(eep590_utils.data, "load_mnist", offline)
    (problem,) = setup_problems(datasets=["mnist"], download=True)
    assert "\n" not in problem
    assert problem.startswith("MNIST could not be downloaded (OSError('no network'))") and "internet" in problem


def test_files_url_fetches_missing_files_and_reports_what_it_could_not(nowhere):
    shipped = nowhere / "release" / "hw9"
    (shipped / "images").mkdir(parents=True)
    (shipped / "images" / "a.png").write_bytes(b"PNG bytes")
    url = shipped.as_uri()  # file:// stands in for the course's https address
    problems = setup_problems(files=["images/a.png", "images/gone.png"], files_url=url)
    assert (nowhere / "nb" / "images" / "a.png").read_bytes() == b"PNG bytes"
    assert len(problems) == 1 and problems[0].startswith("images/gone.png is missing next to this notebook")
    assert not list((nowhere / "nb" / "images").glob("*.part"))


def test_the_module_is_import_light_and_not_imported_by_the_package():
    code = (
        "import sys, eep590_utils.setup_check; bad = {'torch', 'matplotlib', 'torchvision'} & set(sys.modules); "
        "assert not bad, bad; del sys.modules['eep590_utils.setup_check']; from eep590_utils import *; "
        "assert 'eep590_utils.setup_check' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ------------------------------------------------------------------------------------------ the inserter


def _toy_notebook(tmp_path, first_code="import numpy as np\nimport torch\nfrom eep590_utils import *"):
    hw = tmp_path / "source" / "hw9"
    (hw / "images").mkdir(parents=True)
    (hw / "judges").mkdir()
    (hw / "images" / "cat.png").write_bytes(b"png")
    (hw / "judges" / "toy.py").write_text("# never shipped\n")
    (hw / "toy_cnn.pt").write_bytes(b"pt")
    (hw / "unused.pt").write_bytes(b"pt")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Homework 9: toy (1 point)\n\n![a cat](images/cat.png)"),
        nbformat.v4.new_code_cell(first_code),
        nbformat.v4.new_code_cell("train_loader, val_loader, test_loader = mnist_loaders()\nstate = torch.load('toy_cnn.pt')"),
    ]
    path = hw / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_inserter_reads_what_a_notebook_needs(tmp_path):
    path = _toy_notebook(tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert notebook_setup.notebook_needs(nb, path.parent) == (["mnist"], ["images/cat.png", "toy_cnn.pt"])
    assert notebook_setup.shipped_files(path.parent) == ["images/cat.png", "toy_cnn.pt", "unused.pt"]  # never judges/
    nb.cells[0].source = 'A folder of pictures: `images/`, and `load_cifar10` in words only.'
    nb.cells[2].source = 'img = open(os.path.join("images", "cat.png"))\nX = load_cifar10()'
    assert notebook_setup.notebook_needs(nb, path.parent) == (["cifar10"], ["images/cat.png"])


def test_the_inserter_is_idempotent_and_puts_the_cell_first(tmp_path):
    path = _toy_notebook(tmp_path)
    assert notebook_setup.process(path) is True
    once = path.read_bytes()
    assert notebook_setup.process(path) is False
    assert path.read_bytes() == once
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code"]
    cell = nb.cells[1]
    assert cell.id == notebook_setup.CELL_ID and cell.outputs == [] and cell.execution_count is None
    assert cell.metadata["nbgrader"] == {"grade": False, "grade_id": "setup_check", "locked": True, "schema_version": 3,
                                         "solution": False, "task": False}
    assert "datasets=['mnist'], files=['images/cat.png', 'toy_cnn.pt']" in cell.source
    assert f'"{notebook_setup.FILES_URL}/hw9"' in cell.source
    assert nb.cells[2].source.startswith("import numpy as np")
    assert notebook_setup.main(["--check", str(path)]) == 0


def test_the_inserter_refreshes_a_stale_or_moved_cell(tmp_path):
    path = _toy_notebook(tmp_path)
    notebook_setup.process(path)
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells.pop(1)
    cell.source = "# an old set-up cell"
    nb.cells.append(cell)
    nb.cells[1].source += "\nX = load_cifar10()"  # the notebook now needs CIFAR-10 too
    nbformat.write(nb, path)
    assert notebook_setup.main(["--check", str(path)]) == 1
    assert notebook_setup.process(path) is True
    nb = nbformat.read(path, as_version=4)
    assert [notebook_setup.find_setup_cell(nb), len(nb.cells)] == [1, 4]
    assert "datasets=['cifar10', 'mnist']" in nb.cells[1].source
    assert notebook_setup.process(path) is False


def test_the_inserter_refuses_a_release_notebook(tmp_path):
    stray = tmp_path / "release" / "hw9" / "toy.ipynb"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    with pytest.raises(SystemExit):
        notebook_setup.main([str(stray)])


# -------------------------------------------------------------------------------------- the committed notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_every_hw1_hw3_notebook_starts_with_the_current_set_up_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata["nbgrader"]["grade_id"] == "setup_check", "the first code cell is the set-up check"
    assert code[0].metadata["nbgrader"]["locked"] and not code[0].metadata["nbgrader"]["grade"]
    assert "from eep590_utils import *" in code[1].source, "the imports come right after it"
    assert notebook_setup.process(path, check_only=True) is False, f"stale: run python tests/notebook_setup.py {path}"
    release = nbformat.read(REPO / "release" / path.parent.name / path.name, as_version=4)
    first = next(c for c in release.cells if c.cell_type == "code")
    assert first.source == code[0].source and first.metadata["nbgrader"]["locked"]


def test_compression_asks_for_mnist_and_its_checkpoint_and_warmup_for_its_images():
    cells = {p.parent.name + "/" + p.stem: nbformat.read(p, as_version=4).cells for p in NOTEBOOKS}
    first = {name: next(c for c in cs if c.cell_type == "code").source for name, cs in cells.items()}
    assert "datasets=['mnist'], files=['compression_cnn.pt']" in first["hw3/compression"]
    assert "datasets=[], files=['images/activation.png', 'images/lr_panels.png']" in first["hw1/warmup"]
    assert "datasets=[], files=[]" in first["hw1/cross_correlation"]


# ---------------------------------------------------------------------------------- running the cell itself


def _cell_code(name="hw3/compression"):
    path = REPO / "source" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    source = nb.cells[notebook_setup.find_setup_cell(nb)].source
    return TransformerManager().transform_cell(source)  # what IPython runs: %pip becomes a get_ipython() call


@pytest.mark.parametrize("grading", [False, True])
def test_without_the_kit_the_cell_raises_the_one_line_instruction(tmp_path, grading):
    """A fresh Python that cannot import eep590_utils (-I: no cwd, no PYTHONPATH; -S: no site-packages)."""
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    if grading:
        env["NBGRADER_EXECUTION"] = "autograde"  # never installs at grading time, not even "on Colab"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", _cell_code()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: eep590_utils is not installed in this kernel's Python")
    assert "pip install git+https://github.com/eep590/course-kit" in last and "For students" in last
    assert "get_ipython" not in result.stderr


def _run_cell(code, monkeypatch, colab=False, kit_found=True, magics=None):
    namespace = {"get_ipython": lambda: types.SimpleNamespace(run_line_magic=lambda *a: magics.append(a))}
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    if not kit_found:
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "eep590_utils" else real(name, *a))
    exec(compile(code, "<set-up cell>", "exec"), namespace)
    return namespace


def test_on_colab_without_the_kit_the_cell_pip_installs_it(nowhere, monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    magics = []
    namespace = _run_cell(_cell_code("hw1/cross_correlation"), monkeypatch, colab=True, kit_found=False, magics=magics)
    assert magics == [("pip", "install --quiet --no-deps {KIT_URL}")]
    assert namespace["KIT_URL"] == notebook_setup.KIT_URL and namespace["ON_COLAB"]
    assert capsys.readouterr().out == "Set-up OK.\n"


def test_on_colab_the_cell_fetches_missing_files_and_data(nowhere, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    fetched, downloads = [], []
    monkeypatch.setattr("eep590_utils.setup_check._fetch", lambda url, path: (fetched.append(url), path.write_bytes(b"pt")))
    monkeypatch.setattr(eep590_utils.data, "load_mnist", lambda download: downloads.append(download))
    magics = []
    _run_cell(_cell_code(), monkeypatch, colab=True, magics=magics)
    assert magics == [] and downloads == [True]
    assert fetched == [f"{notebook_setup.FILES_URL}/hw3/compression_cnn.pt"]


def test_at_grading_time_the_cell_checks_nothing(nowhere, monkeypatch, capsys):
    """The sandbox has the kit: the cell passes at once, prints nothing, fetches and installs nothing."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    magics = []
    namespace = _run_cell(_cell_code(), monkeypatch, colab=True, magics=magics)  # no compression_cnn.pt, no MNIST here
    assert magics == [] and "check_setup" not in namespace
    assert capsys.readouterr() == ("", "")


def test_off_colab_a_missing_file_stops_the_cell(nowhere, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    _fake_mnist(nowhere / "data_env")
    with pytest.raises(SetupError, match=r"^compression_cnn\.pt is missing next to this notebook .*not just the \.ipynb"):
        _run_cell(_cell_code(), monkeypatch, magics=[])


def test_an_old_kit_without_setup_check_is_one_line(nowhere, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setitem(sys.modules, "eep590_utils.setup_check", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"^eep590_utils is too old for this notebook: run  pip install -U git\+https"):
        _run_cell(_cell_code(), monkeypatch, magics=[])


def test_the_cell_is_stored_as_nbformat_json_without_outputs():
    for path in NOTEBOOKS:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        cell = next(c for c in raw["cells"] if c["cell_type"] == "code")
        assert cell["id"] == notebook_setup.CELL_ID and cell["outputs"] == [] and cell["execution_count"] is None
