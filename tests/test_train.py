"""eep590_utils.training: device, seeding, the training loop, evaluation and metrics, checkpoints.

Everything runs on CPU on tiny synthetic data (a few hundred 2-D points), so the module takes seconds.
Expected values come from direct computations (argmax, nn.functional.cross_entropy, explicit counting).
"""
import os
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eep590_utils.training import (
    CheckpointError,
    accuracy,
    confusion_matrix,
    evaluate,
    get_device,
    load_checkpoint,
    predict,
    save_checkpoint,
    set_seed,
    train,
)


class TinyNet(nn.Module):
    def __init__(self, hidden=16, num_classes=3):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def blobs(n=300, seed=0):
    """Three well separated Gaussian blobs in 2-D: (x float32 (n, 2), y int64 (n,))."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[4.0, 0.0], [-2.0, 3.5], [-2.0, -3.5]])
    return centres[y] + 0.5 * torch.randn(n, 2, generator=g), y


def loader(n=300, seed=0, batch_size=32, shuffle=False):
    x, y = blobs(n, seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed))


# -------------------------------------------------------------------------------------- device, seed


def test_get_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_set_seed_repeats_python_numpy_and_torch():
    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    set_seed(7)
    first = draws()
    set_seed(7)
    assert draws() == first
    set_seed(8)
    assert draws() != first


@pytest.mark.parametrize("seed, error, message", [
    (1.5, TypeError, "seed must be an integer, got float"),
    (True, TypeError, "seed must be an integer, got bool"),
    (-1, ValueError, r"seed must be in 0 .. 2\*\*32 - 1"),
])
def test_set_seed_bad_input(seed, error, message):
    with pytest.raises(error, match=message):
        set_seed(seed)


# ------------------------------------------------------------------------------------------ training


def test_train_learns_and_records_history():
    set_seed(0)
    model = TinyNet()
    history = train(model, loader(shuffle=True), loader(90, seed=1), epochs=3, lr=0.05, device="cpu", progress=False)
    assert set(history) == {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time"}
    assert all(len(values) == 3 for values in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] > 0.95 and history["train_acc"][-1] > 0.9
    assert history["lr"] == [0.05] * 3
    assert not model.training, "train() leaves the model in eval mode"
    val_loss, val_acc = evaluate(model, loader(90, seed=1))
    assert history["val_loss"][-1] == pytest.approx(val_loss) and history["val_acc"][-1] == pytest.approx(val_acc)


def test_train_is_repeatable_with_set_seed():
    runs = []
    for _ in range(2):
        set_seed(3)
        model = TinyNet()
        runs.append((train(model, loader(shuffle=True), epochs=2, device="cpu", progress=False), model.fc1.weight.clone()))
    assert runs[0][0]["train_loss"] == runs[1][0]["train_loss"]
    assert torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0]["val_loss"] == [] and runs[0][0]["val_acc"] == []


def test_train_shows_a_tqdm_bar_per_epoch(capsys):
    train(TinyNet(), loader(), loader(60, seed=1), epochs=2, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "val_acc" in err
    train(TinyNet(), loader(), epochs=1, device="cpu", progress=False)
    assert "epoch" not in capsys.readouterr().err


def test_train_uses_the_given_optimizer_and_steps_the_scheduler():
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train(model, loader(), epochs=3, optimizer=optimizer, scheduler=scheduler, device="cpu", progress=False)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])


def test_train_stops_on_a_nan_loss():
    x, y = blobs(64)
    x[40] = float("nan")
    bad = DataLoader(TensorDataset(x, y), batch_size=16)
    with pytest.raises(FloatingPointError, match=r"training loss became nan at epoch 1/1, batch 3/4"):
        train(TinyNet(), bad, epochs=1, device="cpu", progress=False)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"model": nn.Linear(2, 3).state_dict()}, TypeError, "model must be a torch.nn.Module"),
    ({"epochs": 0}, ValueError, "epochs must be a positive integer, got 0"),
    ({"lr": -1.0}, ValueError, "lr must be a positive number, got -1.0"),
    ({"train_loader": []}, ValueError, "train_loader is empty"),
    ({"train_loader": None}, ValueError, "train_loader is None"),
    ({"train_loader": [torch.zeros(4, 2)]}, TypeError, r"batches must be \(inputs, targets\) pairs"),
    ({"train_loader": [3]}, TypeError, r"each batch should be a pair \(inputs, targets\), got int"),
    ({"loss_fn": nn.CrossEntropyLoss(reduction="none")}, ValueError, r"loss_fn must return a scalar tensor, got \(32,\)"),
])
def test_train_bad_input(kwargs, error, message):
    arguments = {"model": TinyNet(), "train_loader": loader(), "epochs": 1, "device": "cpu", "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        train(**arguments)


# ------------------------------------------------------------------------------ evaluation, metrics


def test_evaluate_averages_over_examples_and_restores_mode():
    set_seed(1)
    model = TinyNet().train()
    x, y = blobs(100)
    loss, acc = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=32))  # batches of 32, 32, 32, 4
    with torch.no_grad():
        scores = model(x)
    assert loss == pytest.approx(float(nn.functional.cross_entropy(scores, y)), rel=1e-5)
    assert acc == pytest.approx(float((scores.argmax(1) == y).double().mean()))
    assert model.training


def test_predict_and_accuracy_match_argmax():
    set_seed(2)
    model = TinyNet()
    x, y = blobs(70)
    preds, labels = predict(model, DataLoader(TensorDataset(x, y), batch_size=16))
    with torch.no_grad():
        expected = model(x).argmax(1)
    assert torch.equal(preds, expected) and torch.equal(labels, y) and preds.dtype == torch.int64
    inputs_only, none = predict(model, DataLoader(x, batch_size=16))
    assert torch.equal(inputs_only, expected) and none is None
    want = float((expected == y).double().mean())
    assert accuracy(model, DataLoader(TensorDataset(x, y), batch_size=16)) == pytest.approx(want)
    assert accuracy(expected.numpy(), y.tolist()) == pytest.approx(want)
    assert accuracy(model(x).detach(), y) == pytest.approx(want)  # (N, K) scores
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75


@pytest.mark.parametrize("preds, labels, message", [
    ([0, 1, 2], [0, 1], "got 3 predictions but 2 labels"),
    ([], [], "accuracy of no examples is undefined"),
    ([0, -1], [0, 1], r"preds\[1\] = -1 is not a class index"),
    ([[0, 1], [1, 0]], [0, 1], "preds must be a 1-D sequence of class indices"),
])
def test_accuracy_bad_input(preds, labels, message):
    with pytest.raises(ValueError, match=message):
        accuracy(preds, labels)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    preds = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 4, 200))
    cm = confusion_matrix(preds, labels, num_classes=4)
    expected = np.zeros((4, 4), dtype=np.int64)
    for t, p in zip(labels, preds):
        expected[t, p] += 1
    assert cm.dtype == np.int64 and np.array_equal(cm, expected) and cm.sum() == 200
    assert np.array_equal(confusion_matrix(torch.tensor(preds), torch.tensor(labels), 4), expected)
    assert confusion_matrix([1], [0], 2).tolist() == [[0, 1], [0, 0]]  # true 0 predicted as 1: row 0, column 1


def test_confusion_matrix_from_a_model_and_loader():
    set_seed(4)
    model = TinyNet()
    x, y = blobs(90)
    with torch.no_grad():
        preds = model(x).argmax(1)
    cm = confusion_matrix(model, DataLoader(TensorDataset(x, y), batch_size=32), num_classes=3)
    assert np.array_equal(cm, confusion_matrix(preds, y, 3))
    assert np.trace(cm) == int((preds == y).sum())


@pytest.mark.parametrize("preds, labels, num_classes, message", [
    ([0, 1], [0, 1], 0, "num_classes must be a positive integer, got 0"),
    ([0, 3], [0, 1], 3, r"preds\[1\] = 3 is not a class index in 0..2"),
    ([0, 1], [0, 1, 1], 3, "got 2 predictions but 3 labels"),
    ([0.5, 1], [0, 1], 3, "preds must hold integer class indices"),
    (np.zeros((2, 4)), [0, 1], 3, r"preds are scores of shape \(2, 4\), but num_classes is 3"),
])
def test_confusion_matrix_bad_input(preds, labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(preds, labels, num_classes)


# ------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_with_metadata(tmp_path):
    set_seed(5)
    model = TinyNet()
    path = save_checkpoint(model, tmp_path / "run" / "tiny.pt", accuracy=np.float64(0.9), seed=5, epochs=3)
    assert path == tmp_path / "run" / "tiny.pt" and os.listdir(path.parent) == ["tiny.pt"]  # no temp files left
    restored, meta = load_checkpoint(path, TinyNet())
    for name, tensor in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor)
    assert meta["architecture"] == "TinyNet" and meta["model_class"].endswith("test_train.TinyNet")
    assert meta["accuracy"] == 0.9 and type(meta["accuracy"]) is float and meta["seed"] == 5 and meta["epochs"] == 3
    assert meta["torch_version"] == torch.__version__
    state_dict, meta_only = load_checkpoint(path)
    assert set(state_dict) == set(model.state_dict()) and meta_only["architecture"] == "TinyNet"
    _, meta = load_checkpoint(save_checkpoint(model, tmp_path / "named.pt", architecture="SmallMLP"), TinyNet(),
                              architecture="SmallMLP")
    assert meta["architecture"] == "SmallMLP"


def test_checkpoints_are_read_with_weights_only(tmp_path, monkeypatch):
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    load_checkpoint(save_checkpoint(TinyNet(), tmp_path / "m.pt"), TinyNet())
    assert calls == [True]


class Payload:
    """Pickling this runs code on load (``touch``) unless the loader refuses arbitrary objects."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"state_dict": TinyNet().state_dict(), "extra": Payload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt holds Python objects other than tensors"):
        load_checkpoint(tmp_path / "evil.pt", TinyNet())
    assert not marker.exists()


def test_missing_checkpoint_says_so(tmp_path):
    save_checkpoint(TinyNet(), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*cnn\.pt \(\.pt files in .*: other\.pt\): did you run"):
        load_checkpoint(tmp_path / "cnn.pt", TinyNet())
    with pytest.raises(CheckpointError, match=r"the folder .*nowhere does not exist"):
        load_checkpoint(tmp_path / "nowhere" / "cnn.pt")


@pytest.mark.parametrize("damage, message", [
    ("truncate", r"corrupt or not a PyTorch checkpoint"),
    ("garbage", r"corrupt or not a PyTorch checkpoint"),
    ("empty", r"corrupt: the file is empty"),
])
def test_corrupt_checkpoint_says_so(tmp_path, damage, message):
    path = save_checkpoint(TinyNet(), tmp_path / "m.pt")
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": os.urandom(500), "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, TinyNet())


def test_folder_instead_of_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        save_checkpoint(TinyNet(), tmp_path)


def test_wrong_architecture_names_the_differences(tmp_path):
    path = save_checkpoint(TinyNet(hidden=16), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"does not fit this TinyNet \(it was saved from TinyNet\).*"
                                              r"fc1\.weight: checkpoint \(16, 2\) vs model \(8, 2\)"):
        load_checkpoint(path, TinyNet(hidden=8))
    with pytest.raises(CheckpointError, match=r"missing keys: 0\.bias, 0\.weight.*unexpected keys: fc1\.bias"):
        load_checkpoint(path, nn.Sequential(nn.Linear(2, 3)))
    with pytest.raises(CheckpointError, match=r"saved for architecture 'TinyNet', expected 'ResNet18'"):
        load_checkpoint(path, TinyNet(), architecture="ResNet18")


def test_whole_pickled_model_is_refused_with_advice(tmp_path):
    torch.save(TinyNet(), tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match=r"whole pickled model .*Re-save it with save_checkpoint"):
        load_checkpoint(tmp_path / "whole.pt", TinyNet())


def test_plain_and_data_parallel_state_dicts_load(tmp_path):
    model = TinyNet()
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    restored, meta = load_checkpoint(tmp_path / "plain.pt", TinyNet())
    assert meta == {} and torch.equal(restored.fc2.bias, model.fc2.bias)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp.pt")
    restored, _ = load_checkpoint(tmp_path / "dp.pt", TinyNet())
    assert torch.equal(restored.fc1.weight, model.fc1.weight)


def test_save_checkpoint_bad_input(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint metadata 'optimizer' is a SGD"):
        model = TinyNet()
        save_checkpoint(model, tmp_path / "m.pt", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="save_checkpoint needs an nn.Module or a state_dict, got str"):
        save_checkpoint("model", tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())
