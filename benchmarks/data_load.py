"""Cold and warm load times of full CIFAR-10 and MNIST with ``eep590_utils.data``, against the old decoder.

Every measurement runs in a fresh Python process:

- cold: an empty cache directory (``EEP590_CACHE`` points at a new temporary folder), so CIFAR-10's
  JPEGs are decoded;
- warm: a second fresh process with the same cache directory, so the decoded arrays are read back.

Two CIFAR-10 decoders are timed in the same run, so their ratio holds on a loaded machine too:

- new: the archive's tar headers walked in memory, JPEGs decoded by torchvision in batches, in threads;
- old: ``tarfile`` and Pillow one image at a time in a process pool (the loader before this change, and
  today's fallback where torchvision is missing).

The table gives the time of the ``load_*()`` call alone (the median of ``--repeats`` runs, wall and CPU),
measured after ``import torch`` (as in a notebook that trains), and the wall time of the whole process
(Python start-up, ``import torch`` and the load). The new cold load includes importing torchvision for its
decoder (about 1.4 s of CPU here, less where a notebook imported it already). MNIST's idx files are read
directly (no cache: gunzip of 1.6 MB is as fast as reading a cache), so its cold and warm columns should agree.
``--check`` also decodes all 60,000 JPEGs with both decoders and checks the pixels are bitwise equal.

Usage (from the repository root)::

    EEP590_DATA=../shared/data python benchmarks/data_load.py
    python benchmarks/data_load.py --data /path/to/data --repeats 3 --check
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

# Runs in the child process: times one loader call and prints the result as JSON.
CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")  # MNIST's offline-split notice
import torch  # noqa: F401 - as in a notebook; see the module docstring
from eep590_utils import data
if sys.argv[2] == "old":  # tarfile and Pillow in a process pool, as before
    data.decode._torchvision_available = lambda: False
    data.read.tar_files = lambda raw, checksums=True: None
loader = getattr(data, sys.argv[1])
def cpu():  # this process's threads and its waited-for children (the old decoder's pool)
    usages = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(r.ru_utime + r.ru_stime for r in usages)
start, start_cpu = time.perf_counter(), cpu()
X_train, y_train, X_test, y_test = loader()
seconds, cpu_seconds = time.perf_counter() - start, cpu() - start_cpu
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "train": list(X_train.shape), "test": list(X_test.shape)}))
"""

DECODERS = {"new": "torchvision batches in threads", "old": "tarfile + Pillow pool (old)"}


def timed_load(loader_name, decoder, data_dir, cache_dir):
    """(load seconds, load CPU seconds, process wall seconds, shapes) of ``loader_name()`` in a fresh process."""
    env = dict(os.environ, EEP590_DATA=str(data_dir), EEP590_CACHE=str(cache_dir),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, loader_name, decoder], env=env, capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{loader_name}() failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["cpu"], wall, (result["train"], result["test"])


def measure(loader_name, decoder, data_dir, repeats):
    """Medians of cold and warm runs: each cold run gets its own empty cache directory."""
    runs = {key: [] for key in ("cold", "cold_cpu", "cold_wall", "warm", "warm_cpu", "warm_wall")}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="eep590-bench-cache-") as cache_dir:
            for phase in ("cold", "warm"):
                seconds, cpu, wall, shapes = timed_load(loader_name, decoder, data_dir, cache_dir)
                runs[phase].append(seconds)
                runs[f"{phase}_cpu"].append(cpu)
                runs[f"{phase}_wall"].append(wall)
    return {**{key: statistics.median(values) for key, values in runs.items()}, "shapes": shapes}


def check_pixels(data_dir):
    """Decode every JPEG of the archive with both decoders; exit with a message unless bitwise equal."""
    import gzip

    import numpy as np

    from eep590_utils.data import decode, read

    raw = gzip.decompress((Path(data_dir) / "cifar10" / "cifar10-jpg.tar.gz").read_bytes())
    items = read.tar_files(raw)
    new, old = decode.decode_images(items), decode.decode_pil_chunk(items)
    differ = int(np.any(new != old, axis=(1, 2, 3)).sum())
    print(f"check: {len(items):,} JPEGs decoded by both decoders, {differ} differ")
    if differ:
        sys.exit(f"{differ} images differ between torchvision and Pillow")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("EEP590_DATA"), help="data directory (default: $EEP590_DATA)")
    parser.add_argument("--repeats", type=int, default=2, help="cold+warm pairs per row (median reported)")
    parser.add_argument("--check", action="store_true", help="also check both decoders' pixels are bitwise equal")
    args = parser.parse_args()
    if not args.data or not Path(args.data).is_dir():
        sys.exit(f"no data directory at {args.data}: pass --data or set EEP590_DATA")

    print(f"data: {args.data}   cores: {os.cpu_count()}   python: {sys.version.split()[0]}   repeats: {args.repeats}")
    header = f"{'dataset':<9} {'decoder':<31} {'train / test images':<35} {'cold load':>10} {'(CPU)':>7} " \
             f"{'warm load':>10} {'(CPU)':>7} {'cold process':>13} {'warm process':>13}"
    print(header)
    print("-" * len(header))
    rows = {}
    for name, loader_name, decoders in (("CIFAR-10", "load_cifar10", ("new", "old")), ("MNIST", "load_mnist", ("new",))):
        for decoder in decoders:
            row = rows[name, decoder] = measure(loader_name, decoder, args.data, args.repeats)
            train, test = row["shapes"]
            shapes = f"{tuple(train)} / {tuple(test)}"
            label = DECODERS[decoder] if name == "CIFAR-10" else "idx files, no cache"
            print(f"{name:<9} {label:<31} {shapes:<35} {row['cold']:>9.2f}s {row['cold_cpu']:>6.1f}s "
                  f"{row['warm']:>9.2f}s {row['warm_cpu']:>6.1f}s {row['cold_wall']:>12.2f}s {row['warm_wall']:>12.2f}s")
    new, old = rows["CIFAR-10", "new"], rows["CIFAR-10", "old"]
    print(f"CIFAR-10 cold load: {old['cold'] / new['cold']:.1f}x faster than the old decoder "
          f"({old['cold']:.2f}s -> {new['cold']:.2f}s), {old['cold_cpu'] / new['cold_cpu']:.1f}x less CPU "
          f"({old['cold_cpu']:.1f}s -> {new['cold_cpu']:.1f}s); warm load {new['cold'] / new['warm']:.0f}x faster than cold")
    print("load = the load_*() call alone, after import torch (CPU: all its threads and processes); "
          "process = the whole fresh process, wall time")
    if args.check:
        check_pixels(args.data)


if __name__ == "__main__":
    main()
