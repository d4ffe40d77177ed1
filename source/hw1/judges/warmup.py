"""Judges of hw1/warmup.ipynb: the autograded answers ``lr_curve_labels`` (which learning rate drew which
loss curve) and ``activation_name`` (the activation function plotted), read from the student's notebook and
compared here with the truth.

The two figures the students label are committed images (``source/hw1/images/lr_panels.png`` and
``activation.png``), drawn by :func:`draw_lr_panels` and :func:`draw_activation` below; this file never reaches
a release or a kernel, so nothing a student can print says which learning rate drew which panel, or which
function was plotted. ``redraw_images()`` redraws both (tests/assignments/test_hw1.py checks that the committed
images are what these functions draw; it prints the command to run when they are not).
"""
import re
from pathlib import Path

import numpy as np

from eep590_utils.checks import check_true
from eep590_utils.grading.judge import Fail, Remote, judge

ALLOWED_LABELS = {"low", "optimal", "high", "very high"}
# Panel "ABCD"[j] of the figure shows the loss curve of learning rate PANEL_LEARNING_RATES[j].
REGIME_OF_LR = {0.004: "low", 0.05: "optimal", 0.3: "high", 0.75: "very high"}
PANEL_LEARNING_RATES = {"A": 0.3, "B": 0.004, "C": 0.75, "D": 0.05}
TRUE_LABELS = {panel: REGIME_OF_LR[lr] for panel, lr in PANEL_LEARNING_RATES.items()}
IMAGES = Path(__file__).resolve().parent.parent / "images"


def sgd_loss_curve(lr, steps=200, batch_size=2, seed=0):
    """Full-data mean squared error (halved) of linear regression before each of ``steps`` SGD updates, from
    the same data, starting point and minibatch sequence for every learning rate: array of shape (steps,)."""
    rng = np.random.default_rng(seed)
    n, d = 256, 5
    X = rng.normal(size=(n, d))
    y = X @ (2.0 * rng.normal(size=d)) + rng.normal(size=n)
    w = np.zeros(d)
    losses = np.empty(steps)
    for t in range(steps):
        losses[t] = 0.5 * np.mean((X @ w - y) ** 2)
        idx = rng.integers(0, n, size=batch_size)
        w = w - lr * X[idx].T @ (X[idx] @ w - y[idx]) / batch_size
    return losses


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def redraw_images(folder=IMAGES):
    draw_lr_panels(Path(folder) / "lr_panels.png")
    draw_activation(Path(folder) / "activation.png")


def _save(fig, path):
    fig.savefig(path, dpi=80, metadata={"Software": None})


def draw_lr_panels(path):
    """The four training-loss panels of question (e), in the order of PANEL_LEARNING_RATES."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        matplotlib.use("Agg")
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), sharey=True)
        for ax, (panel, lr) in zip(axes, PANEL_LEARNING_RATES.items()):
            losses = sgd_loss_curve(lr)
            ax.plot(losses, color="tab:blue")
            ax.set_ylim(0, 1.3 * losses[0])
            ax.set_title(f"Panel {panel}")
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("training loss")
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def draw_activation(path):
    """The activation function of question (f), solid, with ReLU dashed for comparison."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        matplotlib.use("Agg")
        x = np.linspace(-5, 3, 400)
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        ax.plot(x, elu(x), lw=2.5, label="g(x)")
        ax.plot(x, np.maximum(x, 0), "k--", lw=1, label="ReLU(x)")
        ax.axhline(-1, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("x")
        ax.set_ylim(-1.5, 3)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def _labels(student):
    labels = student.value("lr_curve_labels")
    if isinstance(labels, Remote) or not isinstance(labels, dict):
        kind = labels.type_name if isinstance(labels, Remote) else type(labels).__name__
        raise Fail(f"lr_curve_labels should be a dict with the keys 'A' to 'D', but it is a {kind}")
    return labels


@judge("lr_curve_labels_format")
def lr_curve_labels_format(student, gen):
    labels = _labels(student)
    check_true(set(labels) == set("ABCD"),
               f"lr_curve_labels needs exactly the keys 'A', 'B', 'C', 'D'; it has {sorted(map(repr, labels))}")
    for panel, label in sorted(labels.items()):
        check_true(isinstance(label, str) and label in ALLOWED_LABELS,
                   f"panel {panel}: {label!r} is not one of {sorted(ALLOWED_LABELS)}")
    check_true(len(set(labels.values())) == 4, "use each of the four labels exactly once")


@judge("lr_curve_labels_correct")
def lr_curve_labels_correct(student, gen):
    labels = _labels(student)
    check_true(all(labels.get(panel) == label for panel, label in TRUE_LABELS.items()),
               "at least one panel has the wrong label")


@judge("activation_name_correct")
def activation_name_correct(student, gen):
    name = student.value("activation_name")
    check_true(isinstance(name, str), "activation_name should be a string")
    words = re.findall(r"[a-z]+", name.lower())
    joined = "".join(words)
    names_it = bool({"elu", "elus", "celu"} & set(words)) or "exponentiallinear" in joined
    names_another = bool({"selu", "scaled", "gelu", "gaussian"} & set(words))
    check_true(names_it and not names_another, "activation_name does not name the activation function plotted above")

