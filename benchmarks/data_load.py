"""Cold and warm load times of full CIFAR-10 and MNIST with ``eep590_utils.data``.

Every measurement runs in a fresh Python process:

- cold: an empty cache directory (``EEP590_CACHE`` points at a new temporary folder), so CIFAR-10's
  JPEGs are decoded;
- warm: a second fresh process with the same cache directory, so the decoded arrays are read back.

The table gives the time of the ``load_*()`` call alone (the median of ``--repeats`` runs) and the
wall time of the whole process (Python start-up and ``import eep590_utils``, which imports torch,
included). MNIST's idx files are read directly (no cache: gunzip of 1.6 MB is as fast as reading a
cache), so its cold and warm rows should agree.

Usage (from the repository root)::

    python benchmarks/data_load.py                      # data from ../shared/data
    python benchmarks/data_load.py --data /path/to/data --repeats 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# Runs in the child process: times one loader call and prints the result as JSON.
CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")  # MNIST's offline-split notice
from eep590_utils import data
loader = getattr(data, sys.argv[1])
start = time.perf_counter()
X_train, y_train, X_test, y_test = loader()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "train": list(X_train.shape), "test": list(X_test.shape)}))
"""


def timed_load(loader_name, data_dir, cache_dir):
    """(load seconds, process wall seconds, shapes) of ``loader_name()`` in a fresh process."""
    env = dict(os.environ, EEP590_DATA=str(data_dir), EEP590_CACHE=str(cache_dir),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, loader_name], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{loader_name}() failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], wall, (result["train"], result["test"])


def measure(loader_name, data_dir, repeats):
    """Medians of cold and warm runs: each cold run gets its own empty cache directory."""
    cold, warm, cold_wall, warm_wall = [], [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="eep590-bench-cache-") as cache_dir:
            seconds, wall, shapes = timed_load(loader_name, data_dir, cache_dir)
            cold.append(seconds)
            cold_wall.append(wall)
            seconds, wall, _ = timed_load(loader_name, data_dir, cache_dir)
            warm.append(seconds)
            warm_wall.append(wall)
    med = statistics.median
    return {"cold": med(cold), "warm": med(warm), "cold_wall": med(cold_wall), "warm_wall": med(warm_wall),
            "shapes": shapes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("EEP590_DATA", str(DEFAULT_DATA)),
                        help="data directory (default: $EEP590_DATA or ../shared/data)")
    parser.add_argument("--repeats", type=int, default=2, help="cold+warm pairs per dataset (median reported)")
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"no data directory at {args.data}: pass --data or set EEP590_DATA")

    print(f"data: {args.data}   cores: {os.cpu_count()}   python: {sys.version.split()[0]}   repeats: {args.repeats}")
    header = f"{'dataset':<10} {'train / test images':<42} {'cold load':>10} {'warm load':>10} {'speed-up':>9} " \
             f"{'cold process':>13} {'warm process':>13}"
    print(header)
    print("-" * len(header))
    for name, loader_name in (("CIFAR-10", "load_cifar10"), ("MNIST", "load_mnist")):
        row = measure(loader_name, args.data, args.repeats)
        train, test = row["shapes"]
        shapes = f"{tuple(train)} / {tuple(test)}"
        print(f"{name:<10} {shapes:<42} {row['cold']:>9.2f}s {row['warm']:>9.2f}s {row['cold'] / row['warm']:>8.1f}x "
              f"{row['cold_wall']:>12.2f}s {row['warm_wall']:>12.2f}s")
    print("load = the load_*() call alone; process = the whole fresh process (start-up and import of torch included)")


if __name__ == "__main__":
    main()
