"""Benchmark: the course's reference CIFAR-10 CNN (benchmarks/fast_cifar10.py) against airbench94.

Both train on the same decoded JPEG copy of CIFAR-10 (50,000 train / 10,000 test images) kept on the
GPU, and are timed the same way: after one warm-up run (which also compiles), from the uint8 images on
the GPU to the trained model (training time), then the test-time-augmented prediction (eval time);
JPEG decoding is timed separately. Prints one row per method and epoch budget.

    python benchmarks/cifar10_speed.py                      # on a GPU: reference (10 epochs) vs airbench94
    python benchmarks/cifar10_speed.py --epochs 9 10 11     # several epoch budgets of the reference
    python benchmarks/cifar10_speed.py --quick              # smoke test on CPU: 20 images/class, 1 epoch
    python benchmarks/cifar10_speed.py --epochs 9 10 11 12 --runs 5 --json rows.json   # the sweep to run on a GPU

airbench (pip install airbench==0.1.8) is run offline: its loader reads the same decoded arrays,
saved in its own train.pt/test.pt format in a temporary folder, instead of downloading CIFAR-10.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCHMARKS_DIR)
sys.path[:0] = [BENCHMARKS_DIR, REPO_ROOT]  # this folder's modules; eep590_utils even where it is not installed
from cifar10_jpeg import CIFAR10_CLASSES, load_cifar10_arrays  # noqa: E402
from fast_cifar10 import accuracy, predict_with_tta, train_fast_cifar10  # noqa: E402

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
    """Warm up once, then time `runs` fresh trainings: a dict with the row of the results table.

    eval_fn(model) returns the test accuracy, or a dict with it under "acc" and other accuracies
    (reported per run and as means, not timed separately).
    """
    torch.manual_seed(1000)
    model, warmup_s = timed(device, train_fn)
    timed(device, eval_fn, model)
    train_times, eval_times, results = [], [], []
    for run in range(runs):
        torch.manual_seed(run)
        model, train_s = timed(device, train_fn)
        result, eval_s = timed(device, eval_fn, model)
        result = result if isinstance(result, dict) else {"acc": result}
        train_times.append(train_s)
        eval_times.append(eval_s)
        results.append(result)
        extras = "".join(f", {key} {value:.4f}" for key, value in result.items() if key != "acc")
        print(f"  {name:>12} epochs={epochs:<5g} run {run}: train {train_s:.3f} s, eval {eval_s:.3f} s, "
              f"test accuracy {result['acc']:.4f}{extras}", flush=True)
    accuracies = [result["acc"] for result in results]
    row = dict(method=name, epochs=epochs, warmup_s=warmup_s, train_s=statistics.mean(train_times),
               train_sd=statistics.stdev(train_times) if runs > 1 else 0.0, eval_s=statistics.mean(eval_times),
               acc=statistics.mean(accuracies), acc_min=min(accuracies), acc_max=max(accuracies), runs=runs)
    for key in results[0]:
        if key != "acc":
            row[key] = statistics.mean(result[key] for result in results)
    return row


def reference_rows(data, args, device):
    x_train, y_train, x_test, y_test = data
    rows = []
    for epochs in args.epochs:
        def train_fn(epochs=epochs):
            return train_fast_cifar10(x_train, y_train, epochs=epochs, batch_size=args.batch_size,
                                      whiten=not args.no_whiten, compile=args.compile)

        def eval_fn(model):
            result = {"acc": accuracy(predict_with_tta(model, x_test, translate=args.tta == "flip-translate"),
                                      y_test)}
            if args.tta == "flip-translate":  # also report the cheaper mirror-only TTA
                result["acc_flip_only"] = accuracy(predict_with_tta(model, x_test, translate=False), y_test)
            return result
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
    header = (f"{'method':<11} {'epochs':>6} {'runs':>4} {'warm-up s':>9} {'train s':>13} {'TTA eval s':>10} "
              f"{'test acc [min,max]':>22} {'mirror-only':>11} {'train / airbench':>16}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row['train_s'] / base['train_s']:.2f}" if base else "n/a"
        flip_only = f"{row['acc_flip_only']:.4f}" if "acc_flip_only" in row else ""
        print(f"{row['method']:<11} {row['epochs']:>6g} {row['runs']:>4} {row['warmup_s']:>9.2f} "
              f"{row['train_s']:>7.3f} ±{row['train_sd']:.3f} {row['eval_s']:>10.3f} "
              f"{row['acc']:>8.4f} [{row['acc_min']:.4f},{row['acc_max']:.4f}] {flip_only:>11} {ratio:>16}")
    print("train s: from uint8 images on the device to the trained model (whitening, augmentation, all steps); "
          "warm-up s: the first run, compilation included; test acc: with TTA (reference: --tta; airbench94: "
          "its tta_level 2, mirror + translate); mirror-only: the reference's accuracy with mirror TTA alone")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE, help="path of cifar10-jpg.tar.gz")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="decoded-array cache (.npz); '' for none")
    parser.add_argument("--epochs", type=float, nargs="+", default=[10.0], help="epoch budgets of the reference")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    parser.add_argument("--no-whiten", action="store_true", help="learn the stem instead of whitening it")
    parser.add_argument("--tta", choices=("flip", "flip-translate"), default="flip-translate",
                        help="test-time augmentation of the reference (airbench94 uses flip-translate)")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
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
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
                           torch=torch.__version__, rows=rows), f, indent=1)
    return rows


if __name__ == "__main__":
    main()
