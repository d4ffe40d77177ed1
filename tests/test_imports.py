"""Import costs and the lazy package: grading commands start without torch, students still get every name.

``import eep590_utils`` imports none of its submodules (PEP 562 ``__getattr__``): the grading tools, which
import it for ``__file__`` and ``__all__``, and ``nbgrader_config.py``, which imports the feedback module,
must not pay for torch (1-2 s of CPU per command). Each check runs in a fresh process, where nothing was
imported before.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

HEAVY = ("torch", "torchvision", "matplotlib")

# Imports each module in turn (one process: nbgrader, which the grading modules need, costs seconds) and
# prints which heavy modules are loaded after each.
LOADED = """
import importlib, json, sys
after = {}
for module in sys.argv[1:]:
    importlib.import_module(module)
    after[module] = sorted(m for m in %r if m in sys.modules)
print(json.dumps(after))
""" % (HEAVY,)

LIGHT = ["eep590_utils", "eep590_utils.data", "eep590_utils.grading", "eep590_utils.grading.cli",
         "eep590_utils.grading.feedback", "eep590_utils.grading.autograde", "eep590_utils.grading.scan"]


def test_package_and_grading_commands_import_neither_torch_nor_matplotlib():
    done = subprocess.run([sys.executable, "-c", LOADED, *LIGHT, "eep590_utils.grading.report"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)
    assert {module: after[module] for module in LIGHT} == {module: [] for module in LIGHT}
    assert after["eep590_utils.grading.report"] == []  # matplotlib only when it draws the histograms


def test_eep590_help_exits_0_without_torch():
    """The installed console script, as TAs run it; ``-X importtime`` lists every module it imported."""
    script = Path(sys.executable).parent / "eep590"
    if not script.is_file():
        pytest.skip(f"no eep590 console script beside {sys.executable} (package not installed)")
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run([str(script), "--help"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "eep590_utils.grading.cli" in imported
    assert not {"torch", "torchvision", "matplotlib"} & imported


STAR = """
import json, sys
import eep590_utils
namespace = {}
exec("from eep590_utils import *", namespace)
from eep590_utils import checks, data, gradient_check, training, vis
wrong = [name for name in eep590_utils.__all__
         if namespace.get(name) is not getattr(sys.modules["eep590_utils." + eep590_utils._SUBMODULE_OF[name]], name)]
declared = sorted(n for m in (checks, gradient_check, data, vis, training) for n in m.__all__)
print(json.dumps({"wrong": wrong, "declared": declared, "all": sorted(eep590_utils.__all__)}))
"""


def test_static_all_matches_the_submodules_and_star_import_binds_every_name():
    """The static ``__all__`` lists exactly the submodules' ``__all__``; star-import binds each to its object."""
    done = subprocess.run([sys.executable, "-c", STAR], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["wrong"] == []
    assert result["all"] == result["declared"]


def test_train_is_the_function_and_training_the_module():
    """``eep590_utils.train`` is the function, whatever was imported first; the module is ``eep590_utils.training``."""
    checks = ("assert isinstance(eep590_utils.training, types.ModuleType); "
              "assert train is eep590_utils.training.train is eep590_utils.train")
    firsts = ("import eep590_utils.training", "import eep590_utils.train", "from eep590_utils.train import accuracy",
              "from eep590_utils import *")
    for first in firsts:
        code = f"import types; {first}; import eep590_utils, eep590_utils.training; from eep590_utils import train; "
        code += checks
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"after {first!r}: {done.stderr}"


def test_deprecated_train_module_path_still_imports():
    """Notebooks already handed out import ``from eep590_utils.train import ...``: it keeps working."""
    import eep590_utils
    import eep590_utils.training
    from eep590_utils.train import CheckpointError, accuracy, load_checkpoint

    assert accuracy is eep590_utils.training.accuracy and load_checkpoint is eep590_utils.load_checkpoint
    assert CheckpointError is eep590_utils.CheckpointError
    assert callable(eep590_utils.train) and eep590_utils.train is eep590_utils.training.train


def test_unknown_names_raise_attribute_error():
    import eep590_utils

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        eep590_utils.nope  # noqa: B018
    assert "load_cifar10" in dir(eep590_utils) and "training" in dir(eep590_utils)
