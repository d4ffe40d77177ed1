"""Benchmark: the course's reference CIFAR-10 CNN (benchmarks/fast_cifar10.py) against airbench94.

Both train on the same decoded JPEG copy of CIFAR-10 (50,000 train / 10,000 test images) kept on the
GPU, and are timed the same way: after one warm-up run (which also compiles), from the uint8 images on
the GPU to the trained model (training time), then the test-time-augmented prediction (eval time);
JPEG decoding is timed separately. Prints one row per method and epoch budget.

    python benchmarks/cifar10_speed.py                      # on a GPU: reference (10 epochs) vs airbench94
    python benchmarks/cifar10_speed.py --epochs 9 10 11     # several epoch budgets of the reference
    python benchmarks/cifar10_speed.py --quick              # smoke test on CPU: 20 images/class, 1 epoch

airbench (pip install airbench==0.1.8) is run offline: its loader reads the same decoded arrays,
saved in its own train.pt/test.pt format in a temporary folder, instead of downloading CIFAR-10.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCHMARKS_DIR)
sys.path[:0] = [BENCHMARKS_DIR, REPO_ROOT]  # this folder's modules; eep590_utils even where it is not installed
from cifar10_jpeg import CIFAR10_CLASSES, load_cifar10_arrays  # noqa: E402
from fast_cifar10 import accuracy, predict_with_flip_tta, train_fast_cifar10  # noqa: E402

DEFAULT_ARCHIVE = os.path.join(REPO_ROOT, "..", "shared", "data", "cifar10", "cifar10-jpg.tar.gz")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "eep590", "cifar10-jpg-decoded.npz")


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn, *args, **kwargs):
    """(result of fn(*args, **kwargs), wall-clock seconds with the device's queue drained before and after)."""
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    synchronize(device)
    return result, time.perf_counter() - start


def benchmark(name, epochs, train_fn, eval_fn, runs, device):
    """Warm up once, then time `runs` fresh trainings: a dict with the row of the results table."""
    torch.manual_seed(1000)
    model, warmup_s = timed(device, train_fn)
    timed(device, eval_fn, model)
    train_times, eval_times, accuracies = [], [], []
    for run in range(runs):
        torch.manual_seed(run)
        model, train_s = timed(device, train_fn)
        acc, eval_s = timed(device, eval_fn, model)
        train_times.append(train_s)
        eval_times.append(eval_s)
        accuracies.append(acc)
        print(f"  {name:>12} epochs={epochs:<5g} run {run}: train {train_s:.3f} s, eval {eval_s:.3f} s, "
              f"test accuracy {acc:.4f}", flush=True)
    return dict(method=name, epochs=epochs, warmup_s=warmup_s, train_s=statistics.mean(train_times),
                train_sd=statistics.stdev(train_times) if runs > 1 else 0.0, eval_s=statistics.mean(eval_times),
                acc=statistics.mean(accuracies), acc_min=min(accuracies), acc_max=max(accuracies))


def reference_rows(data, args, device):
    x_train, y_train, x_test, y_test = data
    rows = []
    for epochs in args.epochs:
        def train_fn(epochs=epochs):
            return train_fast_cifar10(x_train, y_train, epochs=epochs, batch_size=args.batch_size,
                                      whiten=not args.no_whiten, compile=args.compile)

        def eval_fn(model):
            return accuracy(predict_with_flip_tta(model, x_test), y_test)
        rows.append(benchmark("reference", epochs, train_fn, eval_fn, args.runs, device))
    return rows


def airbench_rows(data, args, device):
    """airbench94 on the same arrays; [] with a note when it cannot run here."""
    if device.type != "cuda":
        print("airbench94: skipped (it needs CUDA)")
        return []
    try:
        import airbench
        from airbench import lib_airbench94
    except ImportError:
        print("airbench94: skipped (pip install airbench==0.1.8)")
        return []
    x_train, y_train, x_test, y_test = data
    workdir = tempfile.mkdtemp(prefix="airbench-")
    os.makedirs(os.path.join(workdir, "cifar10"))
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        torch.save({"images": images.cpu(), "labels": labels.cpu(), "classes": list(CIFAR10_CLASSES)},
                   os.path.join(workdir, "cifar10", f"{split}.pt"))
    previous_dir = os.getcwd()
    os.chdir(workdir)  # airbench's train() reads its test set from ./cifar10/test.pt
    try:
        hyp = lib_airbench94.hyp
        epochs = 1.0 if args.quick else hyp["opt"]["train_epochs"]
        train_loader = airbench.CifarLoader("cifar10", train=True, batch_size=args.batch_size,
                                            aug=hyp["aug"], altflip=True)
        test_loader = airbench.CifarLoader("cifar10", train=False, batch_size=2000)

        def train_fn():
            return airbench.train94(train_loader, epochs=epochs, verbose=False)

        def eval_fn(model):
            return airbench.evaluate(model, test_loader, tta_level=hyp["net"]["tta_level"])
        return [benchmark("airbench94", epochs, train_fn, eval_fn, args.runs, device)]
    finally:
        os.chdir(previous_dir)


def print_table(rows, device):
    base = next((row for row in rows if row["method"] == "airbench94"), None)
    print()
    print(f"CIFAR-10 (JPEG copy) on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
          f"torch {torch.__version__}; times are means over runs after one warm-up")
    header = (f"{'method':<11} {'epochs':>6} {'warm-up s':>9} {'train s':>13} {'TTA eval s':>10} "
              f"{'test acc':>16} {'time / airbench':>15}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{(row['train_s'] + row['eval_s']) / (base['train_s'] + base['eval_s']):.2f}" if base else "n/a"
        print(f"{row['method']:<11} {row['epochs']:>6g} {row['warmup_s']:>9.2f} "
              f"{row['train_s']:>7.3f} ±{row['train_sd']:.3f} {row['eval_s']:>10.3f} "
              f"{row['acc']:>6.4f} [{row['acc_min']:.3f},{row['acc_max']:.3f}] {ratio:>15}")
    print("time / airbench: (train + TTA eval) over airbench94's; warm-up s: the first run, compile included")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE, help="path of cifar10-jpg.tar.gz")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="decoded-array cache (.npz); '' for none")
    parser.add_argument("--epochs", type=float, nargs="+", default=[10.0], help="epoch budgets of the reference")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    parser.add_argument("--no-whiten", action="store_true", help="learn the stem instead of whitening it")
    parser.add_argument("--skip-airbench", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 20 images per class, 1 epoch, batch 50, 1 run, no compile on CPU")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.runs, args.batch_size = [1.0], 1, 50
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        args.compile = False  # inductor on CPU needs a C++ toolchain and is not what we measure
    torch.backends.cudnn.benchmark = True

    start = time.perf_counter()
    arrays = load_cifar10_arrays(args.archive, cache=args.cache or None,
                                 max_per_class=20 if args.quick else None)
    decode_s = time.perf_counter() - start
    data = tuple(torch.from_numpy(arrays[key]).to(device) for key in ("x_train", "y_train", "x_test", "y_test"))
    print(f"data: {len(data[0])} train / {len(data[2])} test images, loaded in {decode_s:.1f} s "
          f"(decoding or cache, not timed below); device {device}, compile={args.compile}", flush=True)

    rows = reference_rows(data, args, device)
    if not args.skip_airbench:
        rows += airbench_rows(data, args, device)
    print_table(rows, device)
    return rows


if __name__ == "__main__":
    main()
