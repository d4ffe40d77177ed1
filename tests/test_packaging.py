"""Packaging: pyproject.toml and environment.yml list the same pip packages with the same pins, and
``from eep590_utils import *`` gives students exactly the course utilities (no instructor tooling)."""
import json
import re
import subprocess
import sys

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

KEY_PINS = {"torch": "==2.14.1", "torchvision": "==0.29.1", "nbgrader": "==0.9.6"}


# --------------------------------------------------------------------------------------------- reading


def pyproject_requirements(text):
    """``{name: specifier}`` of the runtime and ``dev`` dependencies in pyproject.toml's text."""
    project = tomllib.loads(text)["project"]
    lines = project["dependencies"] + project.get("optional-dependencies", {}).get("dev", [])
    return requirements_by_name(lines, "pyproject.toml")


def pip_lines_tiny_parser(text):
    """The entries under ``- pip:`` in environment.yml's text, for machines without PyYAML."""
    entries, pip_indent = [], None
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped.strip():
            continue
        indent = len(stripped) - len(stripped.lstrip())
        if pip_indent is None:
            if re.fullmatch(r"\s*-\s*pip\s*:", stripped):
                pip_indent = indent
        elif indent > pip_indent and stripped.lstrip().startswith("- "):
            entries.append(stripped.lstrip()[2:].strip().strip("'\""))
        else:
            break
    if pip_indent is None:
        raise ValueError("environment.yml has no '- pip:' section")
    return entries


def pip_lines_yaml(text):
    import yaml

    for entry in yaml.safe_load(text)["dependencies"]:
        if isinstance(entry, dict) and "pip" in entry:
            return [str(line) for line in entry["pip"]]
    raise ValueError("environment.yml has no '- pip:' section")


def environment_requirements(text):
    """``{name: specifier}`` of the pip section of environment.yml (pip options such as ``-e .`` left out)."""
    try:
        lines = pip_lines_yaml(text)
    except ImportError:
        lines = pip_lines_tiny_parser(text)
    return requirements_by_name([line for line in lines if not line.startswith("-")], "environment.yml")


def requirements_by_name(lines, where):
    found = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in found:
            raise ValueError(f"{where} lists {name} twice")
        found[name] = str(requirement.specifier)
    return found


def drift(pyproject, environment):
    """Readable differences between two ``{name: specifier}`` dicts (empty when they agree)."""
    problems = [f"{name} ({pyproject[name] or 'any version'}) is in pyproject.toml but not in environment.yml"
                for name in sorted(set(pyproject) - set(environment))]
    problems += [f"{name} ({environment[name] or 'any version'}) is in environment.yml but not in pyproject.toml"
                 for name in sorted(set(environment) - set(pyproject))]
    problems += [f"{name}: pyproject.toml says '{pyproject[name]}', environment.yml says '{environment[name]}'"
                 for name in sorted(set(pyproject) & set(environment))
                 if SpecifierSet(pyproject[name]) != SpecifierSet(environment[name])]
    return problems


@pytest.fixture(scope="module")
def texts():
    return (REPO / "pyproject.toml").read_text(), (REPO / "environment.yml").read_text()


# ---------------------------------------------------------------------------------------------- drift


def test_pyproject_and_environment_list_the_same_packages_and_pins(texts):
    problems = drift(pyproject_requirements(texts[0]), environment_requirements(texts[1]))
    assert not problems, "pyproject.toml and environment.yml drifted apart:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name, pin", sorted(KEY_PINS.items()))
def test_key_versions_are_pinned_in_both(texts, name, pin):
    assert pyproject_requirements(texts[0]).get(name) == pin, f"pyproject.toml must pin {name}{pin}"
    assert environment_requirements(texts[1]).get(name) == pin, f"environment.yml must pin {name}{pin}"


def test_drift_is_reported(texts):
    pyproject, environment = texts
    changed = environment.replace("torch==2.14.1", "torch==2.13.0").replace("      - tqdm>=4.66\n", "")
    changed = changed.replace("      - pillow>=10\n", "      - pillow>=10\n      - scipy\n")
    problems = drift(pyproject_requirements(pyproject), environment_requirements(changed))
    assert problems == [
        "tqdm (>=4.66) is in pyproject.toml but not in environment.yml",
        "scipy (any version) is in environment.yml but not in pyproject.toml",
        "torch: pyproject.toml says '==2.14.1', environment.yml says '==2.13.0'",
    ]


def test_tiny_parser_reads_the_pip_section_like_yaml(texts):
    example = (
        "name: demo  # comment\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - pip\n"
        "  - pip:\n"
        "      # a comment line\n"
        "      - torch==2.14.1  # pinned\n"
        "\n"
        "      - 'numpy>=1.24'\n"
        "      - -e .\n"
        "variables:\n"
        "  - not-a-package\n"
    )
    assert pip_lines_tiny_parser(example) == ["torch==2.14.1", "numpy>=1.24", "-e ."]
    with pytest.raises(ValueError, match="no '- pip:' section"):
        pip_lines_tiny_parser("dependencies:\n  - python=3.11\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        return  # the fallback parser is what reads environment.yml on this machine, checked above
    assert pip_lines_tiny_parser(example) == pip_lines_yaml(example)
    assert pip_lines_tiny_parser(texts[1]) == pip_lines_yaml(texts[1])


def test_environment_python_satisfies_requires_python(texts):
    requires = SpecifierSet(tomllib.loads(texts[0])["project"]["requires-python"])
    match = re.search(r"^\s*-\s*python\s*=+\s*([\d.]+)", texts[1], re.MULTILINE)
    assert match, "environment.yml should pin a python version"
    assert match.group(1) in requires, f"environment.yml's python {match.group(1)} is outside requires-python {requires}"


# ------------------------------------------------------------------------------------------ namespace

STUDENT_NAMES = {
    # checks
    "check_close", "check_shape", "check_type", "check_true",
    # gradient_check
    "eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse", "rel_error",
    # data
    "load_cifar10", "load_mnist", "get_cifar10_data", "cifar10_loaders", "mnist_loaders",
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "MNIST_MEAN", "MNIST_STD",
    # vis
    "show_images", "show_filters", "show_feature_maps", "plot_training_curves", "plot_confusion_matrix",
    # train
    "get_device", "set_seed", "train", "evaluate", "predict", "accuracy", "confusion_matrix",
    "save_checkpoint", "load_checkpoint", "CheckpointError",
}

STAR_IMPORT = """
import json, sys, types
namespace = {}
exec("from eep590_utils import *", namespace)
namespace.pop("__builtins__")
print(json.dumps({
    "names": sorted(namespace),
    "modules": sorted(name for name, value in namespace.items() if isinstance(value, types.ModuleType)),
    "private": sorted(name for name in namespace if name.startswith("_")),
    "grading_imported": sorted(m for m in sys.modules if m.startswith("eep590_utils.grading")),
    "train_is_function": callable(namespace.get("train")) and not isinstance(namespace.get("train"), type),
}))
"""


@pytest.fixture(scope="module")
def star_import():
    """What a fresh ``from eep590_utils import *`` defines (a new process: nothing imported before)."""
    done = subprocess.run([sys.executable, "-c", STAR_IMPORT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_star_import_gives_what_the_notebooks_use(star_import):
    missing = STUDENT_NAMES - set(star_import["names"])
    assert not missing, f"from eep590_utils import * lacks {sorted(missing)}"
    assert star_import["train_is_function"], "train must be the training function, not the module"


def test_star_import_gives_nothing_instructor_only_or_private(star_import):
    assert "grading" not in star_import["names"]
    assert star_import["grading_imported"] == [], "importing eep590_utils must not import the grading tools"
    assert star_import["modules"] == [], f"modules leak into the students' namespace: {star_import['modules']}"
    assert star_import["private"] == []


def test_every_exported_name_is_documented_and_exists():
    import eep590_utils

    for name in eep590_utils.__all__:
        value = getattr(eep590_utils, name)  # AttributeError names a stale __all__ entry
        if callable(value):
            assert (value.__doc__ or "").strip(), f"eep590_utils.{name} has no docstring"
    assert len(eep590_utils.__all__) == len(set(eep590_utils.__all__)), "a name is exported by two modules"
