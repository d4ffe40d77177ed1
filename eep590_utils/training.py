"""Training helpers for the PyTorch notebooks: device, seeding, the training loop, evaluation, checkpoints.

A typical notebook::

    set_seed(0)
    model = Net()
    history = train(model, train_loader, val_loader, epochs=10, lr=1e-3)
    plot_training_curves(history)
    save_checkpoint(model, "cnn.pt", architecture="Net", accuracy=history["val_acc"][-1], seed=0)
    model, meta = load_checkpoint("cnn.pt", Net())

Loaders yield ``(inputs, targets)`` batches. Classification models return
scores of shape (N, K) and targets are class indices of shape (N,).
"""
import datetime
import os
import random
import tempfile
import time
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "get_device",
    "set_seed",
    "train",
    "evaluate",
    "predict",
    "accuracy",
    "confusion_matrix",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
]

_CHECKPOINT_FORMAT = "eep590-checkpoint"
_CHECKPOINT_VERSION = 1


def get_device():
    """The best available ``torch.device``: CUDA if present, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed):
    """Seed Python's ``random``, NumPy, torch (CPU) and every CUDA device with ``seed``.

    Together with a fixed data order this makes a CPU training run repeat
    exactly; GPU kernels may still differ in the last bits.
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in 0 .. 2**32 - 1 (what NumPy accepts), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return seed


# ------------------------------------------------------------------------------------- batches


def _split_batch(batch, where):
    """``(inputs, targets)`` from a batch; targets is None for an inputs-only loader."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, (list, tuple)) and len(batch) == 1:
        return batch[0], None
    raise TypeError(
        f"{where}: each batch should be a pair (inputs, targets), got {type(batch).__name__}"
        + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
    )


def _to(value, device):
    return value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value


def _predicted_classes(outputs):
    """Class indices from model outputs: argmax of (N, K) scores, or a 0 threshold on (N,) / (N, 1) logits."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(dim=1)
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        return (outputs.reshape(-1) > 0).long()
    raise ValueError(
        f"cannot read class predictions from model outputs of shape {tuple(outputs.shape)}: "
        "expected (N, num_classes) scores"
    )


def _count_correct(outputs, targets):
    """Number of correct class predictions in a batch, or None when accuracy is not defined (e.g. regression)."""
    if targets is None or not isinstance(targets, torch.Tensor) or outputs.ndim not in (1, 2):
        return None
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        if targets.dtype.is_floating_point or targets.ndim != 1:
            return None  # soft labels or multi-label targets
    elif targets.numel() != outputs.shape[0]:
        return None
    return int((_predicted_classes(outputs).reshape(-1) == targets.reshape(-1).long()).sum())


def _batch_size(inputs):
    return inputs.shape[0] if isinstance(inputs, torch.Tensor) and inputs.ndim else 1


def _model_device(model):
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _scalar_loss(loss, where):
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"{where}: loss_fn must return a scalar tensor, got {shape} (use reduction='mean')")
    return loss.reshape(())


# -------------------------------------------------------------------------------------- training


def _check_loader(loader, name):
    if loader is None:
        raise ValueError(f"{name} is None")
    try:
        length = len(loader)
    except TypeError:
        return None  # an iterable without len(): fine
    if length == 0:
        raise ValueError(f"{name} is empty: it yields no batches (is the dataset empty, or batch_size > len with drop_last?)")
    return length


def train(model, train_loader, val_loader=None, epochs=10, optimizer=None, lr=1e-3, loss_fn=None,
          device=None, scheduler=None, progress=True):
    """Train ``model`` for ``epochs`` passes over ``train_loader``.

    Inputs:
    - model: an ``nn.Module`` returning (N, K) class scores.
    - train_loader, val_loader: iterables of ``(inputs, targets)`` batches
      (targets: (N,) class indices); ``val_loader`` is evaluated after every epoch.
    - epochs: number of passes over the training data.
    - optimizer: a ``torch.optim`` optimizer over ``model``'s parameters;
      default ``Adam(model.parameters(), lr=lr)`` (``lr`` is ignored when an optimizer is given).
    - loss_fn: scalar loss of (outputs, targets); default ``nn.CrossEntropyLoss()``.
    - device: where to train; default ``get_device()``. The model is moved there.
    - scheduler: optional learning-rate scheduler, stepped once after every
      epoch (``ReduceLROnPlateau`` is stepped with the validation loss, or the
      training loss without a validation set).
    - progress: show a tqdm progress bar per epoch with the running loss and accuracy.

    Returns history, a dict of per-epoch lists: ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` (empty without ``val_loader``), ``lr`` (the
    learning rate used in that epoch) and ``epoch_time`` (seconds). Accuracies
    are fractions in [0, 1] (NaN where the targets are not class indices).

    Raises FloatingPointError naming the epoch and batch when the loss becomes
    NaN or infinite. The model is left in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    num_batches = _check_loader(train_loader, "train_loader")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    if optimizer is None:
        if not isinstance(lr, Real) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()

    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [], "lr": [], "epoch_time": []}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        epoch_lr = optimizer.param_groups[0]["lr"]
        model.train()
        total_loss, total_correct, seen, accuracy_defined = 0.0, 0, 0, True
        # a bar updated by hand: iterating over tqdm(loader) would close it before the validation numbers are in
        bar = tqdm(desc=f"epoch {epoch}/{epochs}", total=num_batches, disable=not progress, leave=True,
                   dynamic_ncols=True, unit="batch")
        for batch_index, batch in enumerate(train_loader, start=1):
            where = f"epoch {epoch}/{epochs}, batch {batch_index}" + (f"/{num_batches}" if num_batches else "")
            inputs, targets = _split_batch(batch, f"train_loader ({where})")
            if targets is None:
                raise TypeError(f"train_loader ({where}): batches must be (inputs, targets) pairs")
            inputs, targets = _to(inputs, device), _to(targets, device)
            outputs = model(inputs)
            loss = _scalar_loss(loss_fn(outputs, targets), where)
            loss_value = float(loss.detach())
            if not np.isfinite(loss_value):
                bar.close()
                raise FloatingPointError(
                    f"the training loss became {loss_value} at {where}. Usual causes: a learning rate that is "
                    f"too high (it was {epoch_lr:g}), NaN or infinite values in the inputs, a log or division of 0 "
                    "in the model or loss."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            n = _batch_size(inputs)
            total_loss += loss_value * n
            seen += n
            correct = _count_correct(outputs.detach(), targets)
            if correct is None:
                accuracy_defined = False
            else:
                total_correct += correct
            postfix = {"loss": f"{total_loss / seen:.4f}"}
            if accuracy_defined:
                postfix["acc"] = f"{total_correct / seen:.3f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)

        if seen == 0:
            bar.close()
            raise ValueError(f"train_loader yielded no batches in epoch {epoch}")
        history["train_loss"].append(total_loss / seen)
        history["train_acc"].append(total_correct / seen if accuracy_defined else float("nan"))
        history["lr"].append(epoch_lr)
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, device=device, loss_fn=loss_fn)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
            postfix.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
            bar.set_postfix(postfix, refresh=False)
        bar.close()
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(history["val_loss"][-1] if val_loader is not None else history["train_loss"][-1])
            else:
                scheduler.step()
        history["epoch_time"].append(time.perf_counter() - start)
    model.eval()
    return history


# ------------------------------------------------------------------------------------ evaluation


def evaluate(model, loader, device=None, loss_fn=None):
    """Average loss and accuracy of ``model`` over ``loader``, without gradients.

    Inputs:
    - model: ``nn.Module`` returning (N, K) class scores.
    - loader: iterable of ``(inputs, targets)`` batches.
    - device: where to run; default the device of the model's parameters.
    - loss_fn: default ``nn.CrossEntropyLoss()`` (mean over the batch).

    Returns (loss, accuracy): floats, averaged over examples; accuracy is a
    fraction in [0, 1] (NaN where the targets are not class indices). The
    model's train/eval mode is restored afterwards.
    """
    _check_loader(loader, "loader")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, total_correct, seen, accuracy_defined = 0.0, 0, 0, True
    try:
        with torch.no_grad():
            for batch_index, batch in enumerate(loader, start=1):
                inputs, targets = _split_batch(batch, f"loader (batch {batch_index})")
                if targets is None:
                    raise TypeError(f"loader (batch {batch_index}): evaluate needs (inputs, targets) batches")
                inputs, targets = _to(inputs, device), _to(targets, device)
                outputs = model(inputs)
                loss = _scalar_loss(loss_fn(outputs, targets), f"batch {batch_index}")
                n = _batch_size(inputs)
                total_loss += float(loss) * n
                seen += n
                correct = _count_correct(outputs, targets)
                if correct is None:
                    accuracy_defined = False
                else:
                    total_correct += correct
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("loader yielded no examples")
    return total_loss / seen, (total_correct / seen if accuracy_defined else float("nan"))


def predict(model, loader, device=None):
    """Predicted classes for every example of ``loader``.

    Inputs:
    - model: ``nn.Module`` returning (N, K) class scores.
    - loader: iterable of ``(inputs, targets)`` (or inputs-only) batches.
    - device: where to run; default the device of the model's parameters.

    Returns (preds, labels): int64 CPU tensors of shape (num_examples,);
    labels is None for an inputs-only loader.
    """
    _check_loader(loader, "loader")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    was_training = model.training
    model.eval()
    preds, labels = [], []
    try:
        with torch.no_grad():
            for batch_index, batch in enumerate(loader, start=1):
                inputs, targets = _split_batch(batch, f"loader (batch {batch_index})")
                preds.append(_predicted_classes(model(_to(inputs, device))).reshape(-1).cpu())
                if targets is not None:
                    labels.append(torch.as_tensor(targets).reshape(-1).cpu().long())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("loader yielded no batches")
    labels = torch.cat(labels) if len(labels) == len(preds) else None
    return torch.cat(preds).long(), labels


def accuracy(model_or_preds, loader_or_labels, device=None):
    """Fraction of examples classified correctly (a float in [0, 1]).

    Either ``accuracy(model, loader)`` (runs ``predict``) or ``accuracy(preds, labels)`` with N predicted
    class indices (or (N, K) scores) and N true class indices (arrays, lists or tensors).
    """
    if isinstance(model_or_preds, nn.Module):
        preds, labels = predict(model_or_preds, loader_or_labels, device=device)
        if labels is None:
            raise ValueError("accuracy needs a loader of (inputs, targets) batches")
        preds, labels = preds.numpy(), labels.numpy()
    else:
        preds, labels = _as_indices(model_or_preds, "preds"), _as_indices(loader_or_labels, "labels")
        if preds.shape != labels.shape:
            raise ValueError(f"got {preds.shape[0]} predictions but {labels.shape[0]} labels")
    if preds.size == 0:
        raise ValueError("accuracy of no examples is undefined: preds and labels are empty")
    return float(np.mean(preds == labels))


def _as_indices(values, name):
    """1-D int64 class indices from indices or (N, K) scores (argmax), without a class-count check."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    num_classes = array.shape[1] if array.ndim == 2 else int(array.max(initial=0)) + 1
    return _class_indices(array, name, max(num_classes, 1))


def _class_indices(values, name, num_classes):
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 2 and np.issubdtype(array.dtype, np.floating):  # scores (N, K): take the argmax
        if array.shape[1] != num_classes:
            raise ValueError(f"{name} are scores of shape {array.shape}, but num_classes is {num_classes}")
        array = array.argmax(axis=1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    outside = (array < 0) | (array >= num_classes)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"{name}[{i}] = {array[i]} is not a class index in 0..{num_classes - 1}")
    return array


def confusion_matrix(model_or_preds, loader_or_labels, num_classes):
    """Confusion matrix: ``cm[i, j]`` counts the examples of true class i predicted as class j.

    Either ``confusion_matrix(model, loader, num_classes)`` (runs ``predict``) or
    ``confusion_matrix(preds, labels, num_classes)`` with preds and labels
    sequences/arrays/tensors of N class indices (preds may also be (N, K) scores).

    Returns an int64 NumPy array of shape (num_classes, num_classes); rows are
    true classes, columns predicted classes, and it sums to N.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    if isinstance(model_or_preds, nn.Module):
        preds, labels = predict(model_or_preds, loader_or_labels)
        if labels is None:
            raise ValueError("confusion_matrix needs a loader of (inputs, targets) batches")
    else:
        preds, labels = model_or_preds, loader_or_labels
    preds = _class_indices(preds, "preds", num_classes)
    labels = _class_indices(labels, "labels", num_classes)
    if preds.shape != labels.shape:
        raise ValueError(f"got {preds.shape[0]} predictions but {labels.shape[0]} labels")
    counts = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


# ------------------------------------------------------------------------------------ checkpoints


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model."""


def _unwrap(model):
    """The module whose parameters a state_dict should name (drops torch.compile and DataParallel wrappers)."""
    while True:
        if hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def _plain_metadata(value, key):
    """``value`` made of types that ``torch.load(weights_only=True)`` accepts, else TypeError naming ``key``."""
    if isinstance(value, np.generic):
        return value.item()
    for plain in (bool, int, float, complex, str):  # also their subclasses (torch.__version__ is a str subclass)
        if isinstance(value, plain):
            return plain(value)
    if value is None or isinstance(value, (torch.Tensor, torch.dtype, torch.device)):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [_plain_metadata(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        return {str(k): _plain_metadata(v, f"{key}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"checkpoint metadata {key!r} is a {type(value).__name__}; use numbers, strings, lists, dicts or tensors "
        "(they load safely with weights_only=True)"
    )


def save_checkpoint(model, path, **metadata):
    """Save ``model``'s state_dict with metadata to ``path``, atomically.

    Inputs:
    - model: an ``nn.Module`` (a torch.compile or DataParallel wrapper is
      unwrapped) or a state_dict.
    - path: file to write (``.pt`` by convention); missing folders are created.
    - metadata: keyword arguments stored beside the weights, e.g.
      ``architecture="SmallCNN", accuracy=0.87, seed=0, epochs=10``; numbers,
      strings, lists, dicts and tensors (NumPy values are converted).
      ``architecture`` defaults to the model's class name.

    The file also records ``model_class``, ``torch_version`` and ``saved_at``.
    It is written to a temporary file that replaces ``path`` only when
    complete, so an interrupted save never leaves a half-written checkpoint.
    Returns the path as a ``pathlib.Path``.
    """
    if isinstance(model, nn.Module):
        module = _unwrap(model)
        state_dict = module.state_dict()
        model_class = f"{type(module).__module__}.{type(module).__qualname__}"
    elif isinstance(model, Mapping) and all(isinstance(v, torch.Tensor) for v in model.values()):
        state_dict, model_class = model, None
    else:
        raise TypeError(f"save_checkpoint needs an nn.Module or a state_dict, got {type(model).__name__}")
    meta = {key: _plain_metadata(value, key) for key, value in metadata.items()}
    if model_class is not None:
        meta.setdefault("architecture", model_class.rsplit(".", 1)[-1])
    meta.setdefault("model_class", model_class)
    meta.setdefault("torch_version", str(torch.__version__))
    meta.setdefault("saved_at", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "format_version": _CHECKPOINT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": meta,
    }

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as {path / 'model.pt'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def _disallowed_globals(path, error):
    """The Python classes/functions that made ``torch.load(weights_only=True)`` refuse ``path``."""
    import re

    try:
        found = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # not a zip checkpoint (legacy format or not a checkpoint at all)
        found = []
    return found or re.findall(r"Unsupported global: GLOBAL ([\w.]+)", str(error))


def _read_checkpoint(path, map_location):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes a CheckpointError below
        error = err
    found = _disallowed_globals(path, error)
    if any(name.startswith(("torch.nn.modules.", "__main__.")) for name in found):
        raise CheckpointError(
            f"{path} holds a whole pickled model (torch.save(model, ...)), not a state_dict: "
            "it cannot be loaded safely. Re-save it with save_checkpoint(model, path), which stores "
            "model.state_dict(). (If you made this file yourself and trust it, "
            "torch.load(path, weights_only=False).state_dict() recovers the weights.)"
        ) from None
    if found:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain values ({_brief(found)}), "
            "perhaps a whole pickled model: save the model's state_dict with save_checkpoint(model, path) instead"
        )
    raise CheckpointError(
        f"{path} is corrupt or not a PyTorch checkpoint (an interrupted save or copy?): "
        f"{_reason(error)}"
    )


def _reason(error):
    """One short line saying why torch.load failed (torch's own messages run to paragraphs)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return f"{type(error).__name__}: {line[:160]}"


def _split_payload(payload, path):
    """(state_dict, metadata) from what torch.load returned."""
    if isinstance(payload, Mapping) and payload.get("format") == _CHECKPOINT_FORMAT:
        return dict(payload["state_dict"]), dict(payload.get("metadata") or {})
    if isinstance(payload, Mapping) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return dict(payload), {}  # torch.save(model.state_dict(), path)
    if isinstance(payload, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = payload.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner), {k: v for k, v in payload.items() if k != key}
    raise CheckpointError(
        f"{path} does not hold a state_dict (it holds a {type(payload).__name__}"
        + (f" with keys {sorted(map(str, payload))[:8]}" if isinstance(payload, Mapping) else "")
        + "); save models with save_checkpoint(model, path)"
    )


def _strip_common_prefix(state_dict, model_keys):
    for prefix in ("module.", "_orig_mod."):
        if state_dict and all(k.startswith(prefix) for k in state_dict) and not any(k.startswith(prefix) for k in model_keys):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _brief(names, limit=5):
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _check_fits(model, state_dict, metadata, path):
    expected = model.state_dict()
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"missing keys: {_brief(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_brief(unexpected)}")
    if mismatched:
        more = f"; ... ({len(mismatched) - 5} more)" if len(mismatched) > 5 else ""
        problems.append("shape mismatches: " + "; ".join(mismatched[:5]) + more)
    saved_from = metadata.get("architecture") or metadata.get("model_class")
    origin = f" (it was saved from {saved_from})" if saved_from else ""
    raise CheckpointError(
        f"{path} does not fit this {type(model).__name__}{origin}: the architecture differs. "
        + ". ".join(problems)
        + ". Build the model exactly as it was when the checkpoint was saved."
    )


def load_checkpoint(path, model=None, map_location="cpu", architecture=None):
    """Load a checkpoint written by ``save_checkpoint`` (or a plain ``torch.save(state_dict)`` file).

    Inputs:
    - path: the checkpoint file.
    - model: optional ``nn.Module`` of the same architecture to load the weights into.
    - map_location: where tensors are loaded (default CPU); passed to ``torch.load``.
    - architecture: optional name the checkpoint's ``architecture`` metadata must equal (e.g. "SmallCNN").

    Returns (model, metadata) when a model is given, else (state_dict, metadata);
    metadata is a dict (empty for a plain state_dict file).
    Reads with ``torch.load(..., weights_only=True)``: no code in the file runs.

    Raises CheckpointError (a ValueError) when the file is missing, corrupt,
    holds a whole pickled model instead of a state_dict, was saved for another
    ``architecture``, or does not fit ``model`` (it lists missing and
    unexpected keys and shape mismatches).
    """
    path = Path(path)
    if not path.exists():
        folder = path.resolve().parent
        if folder.is_dir():
            nearby = _brief(p.name for p in folder.glob("*.pt")) or "none"
            seen = f"(.pt files in {folder}: {nearby})"
        else:
            seen = f"(the folder {folder} does not exist)"
        raise CheckpointError(
            f"no checkpoint at {path} {seen}: did you run the training/saving cell?"
        )
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is corrupt: the file is empty (interrupted save?)")
    payload = _read_checkpoint(path, map_location)
    state_dict, metadata = _split_payload(payload, path)
    if architecture is not None and metadata.get("architecture") != architecture:
        saved = metadata.get("architecture")
        raise CheckpointError(
            f"{path} was saved for architecture {saved!r}, expected {architecture!r}"
            + ("" if saved else " (it records no architecture: save it with save_checkpoint(model, path, architecture=...))")
        )
    if model is None:
        return state_dict, metadata
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module to load the weights into, got {type(model).__name__}")
    target = _unwrap(model)
    state_dict = _strip_common_prefix(state_dict, target.state_dict().keys())
    _check_fits(target, state_dict, metadata, path)
    target.load_state_dict(state_dict)
    return model, metadata
