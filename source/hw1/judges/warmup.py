"""Judges of hw1/warmup.ipynb: the autograded answers ``lr_curve_labels`` (which learning rate drew which
loss curve) and ``activation_name`` (the activation function plotted), read from the student's notebook and
compared here with the truth, which the judge works out itself."""
import re

import numpy as np

from eep590_utils.checks import check_true
from eep590_utils.grading.judge import Fail, Remote, judge

ALLOWED_LABELS = {"low", "optimal", "high", "very high"}
# The notebook's cell `lr_curves` draws the curve of learning rate LEARNING_RATES[i] in panel
# "ABCD"[j] for i = ORDER[j] (tests/assignments/test_hw1.py checks that this agrees with the cell).
LEARNING_RATES = [0.004, 0.05, 0.3, 0.75]
REGIME_OF_LR = {0.004: "low", 0.05: "optimal", 0.3: "high", 0.75: "very high"}
ORDER = np.random.default_rng(2024).permutation(len(LEARNING_RATES))
TRUE_LABELS = {panel: REGIME_OF_LR[LEARNING_RATES[i]] for panel, i in zip("ABCD", ORDER)}


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
