"""ruff (configured in pyproject.toml) finds nothing in the package, the tests, the benchmarks or the judges."""
import shutil
import subprocess
import sys

from conftest import REPO


def test_ruff_is_clean():
    ruff = [sys.executable, "-m", "ruff"] if shutil.which("ruff") is None else ["ruff"]
    result = subprocess.run([*ruff, "check", "--output-format", "concise", "."], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
