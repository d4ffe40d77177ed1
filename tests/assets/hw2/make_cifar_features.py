"""Train the pretrained CNN that hw2 cnn_training's transfer-learning question starts from.

Writes source/hw2/cifar_features.pt (released next to the notebook, < 1 MB): the weights of the notebook's
``CifarFeatureCNN`` (its class is read from the notebook's ``transfer_model`` cell, so the two cannot drift
apart) after a few epochs of CIFAR-10, saved with ``save_checkpoint`` (loads with ``torch.load(weights_only=True)``).
Nothing is downloaded: the data come from ``EEP590_DATA``.

    EEP590_DATA=/work/shared/data python tests/assets/hw2/make_cifar_features.py [--epochs 4] [--threads 2]

The committed checkpoint: 4 epochs, 66.0% CIFAR-10 test accuracy (validation 67.2%), 380 KiB; 13.9 minutes on
2 threads of a shared, loaded 2-core machine (about a minute per epoch when the cores are free).
"""
import argparse
import time
from pathlib import Path

import nbformat
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
NOTEBOOK = REPO / "source" / "hw2" / "cnn_training.ipynb"
OUTPUT = REPO / "source" / "hw2" / "cifar_features.pt"


def notebook_class():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "transfer_model")
    namespace = {}
    exec("import torch\nfrom torch import nn", namespace)
    exec(cell.source, namespace)
    return namespace["CifarFeatureCNN"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from eep590_utils import accuracy, cifar10_loaders, save_checkpoint, set_seed, train

    set_seed(0)
    train_loader, val_loader, test_loader = cifar10_loaders(batch_size=128, val_size=2000, augment=True)
    model = notebook_class()()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)

    original_step = optimizer.step

    def step(*a, **k):  # OneCycleLR steps once per batch; train() would step a scheduler once per epoch
        out = original_step(*a, **k)
        if scheduler.last_epoch + 1 < steps:
            scheduler.step()
        return out

    optimizer.step = step
    start = time.perf_counter()
    history = train(model, train_loader, val_loader, epochs=args.epochs, optimizer=optimizer, device="cpu")
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, test_loader)
    path = save_checkpoint(model.float(), args.output, architecture="CifarFeatureCNN", model_kwargs={},
                           test_accuracy=test_accuracy, epochs=args.epochs, seed=0,
                           trained_on="CIFAR-10, 48,000 training images (random crops and flips), Adam, one-cycle")
    print(f"val accuracy per epoch {np.round(history['val_acc'], 4).tolist()}, CIFAR-10 test accuracy "
          f"{test_accuracy:.4f}, {seconds / 60:.1f} min on {args.threads} threads; {path} "
          f"{path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
