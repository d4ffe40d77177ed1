"""Every grading limit's default lives once (grading/settings.py): the configuration, the limits a run
obeys and the command line agree, and a limit that makes no sense is refused in words."""
import pytest

from eep590_utils.grading import settings
from eep590_utils.grading.cli import main
from eep590_utils.grading.course import Course
from eep590_utils.grading.settings import SETTINGS, GradingLimits, Limits, configured_limits, from_env


@pytest.fixture
def course(monkeypatch):
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)
    return Course()


def test_defaults_agree_everywhere(course):
    limits, conf = configured_limits(course), GradingLimits(config=course.config)
    assert limits.cell_timeout == course.config.Execute.timeout == SETTINGS["cell_timeout"].default
    assert limits.notebook_timeout == conf.notebook_timeout == SETTINGS["notebook_timeout"].default
    assert limits.memory_bytes == conf.memory_limit_mb * settings.MiB == SETTINGS["memory_limit_mb"].default * settings.MiB
    assert limits.disk_bytes == SETTINGS["disk_limit_mb"].default * settings.MiB
    assert limits.max_processes == SETTINGS["max_processes"].default
    assert Limits() == limits  # the dataclass's own defaults are the same numbers


def test_environment_overrides_through_nbgrader_config(monkeypatch):
    monkeypatch.setenv("EEP590_CELL_TIMEOUT", "7")
    monkeypatch.setenv("EEP590_DISK_LIMIT_MB", "10")
    limits = configured_limits(Course())
    assert limits.cell_timeout == 7 and limits.disk_bytes == 10 * settings.MiB


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("EEP590_MEMORY_LIMIT_MB", "lots")
    with pytest.raises(ValueError, match="EEP590_MEMORY_LIMIT_MB='lots' is not a whole number"):
        from_env("memory_limit_mb")


@pytest.mark.parametrize("kwargs, name", [({"cell_timeout": 0}, "cell_timeout"),
                                          ({"notebook_timeout": -5}, "notebook_timeout"),
                                          ({"memory_limit_mb": 0}, "memory_bytes")])
def test_a_limit_that_is_not_positive_is_refused(course, kwargs, name):
    with pytest.raises(ValueError, match=f"limit {name} must be a positive number"):
        configured_limits(course, **kwargs)


def test_cli_refuses_cell_timeout_zero_in_one_line(capsys):
    assert main(["autograde", "hw1", "--cell-timeout", "0", "--no-sandbox"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["eep590 autograde: limit cell_timeout must be a positive number, got 0.0"]


def test_help_quotes_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["autograde", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"$EEP590_NOTEBOOK_TIMEOUT or {SETTINGS['notebook_timeout'].default}" in out
