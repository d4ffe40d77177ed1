"""Judges of hw2/cnn_training.ipynb: every autograded cell is decided here, outside the student's kernel.

SmallCNN (Question 1) is probed in the kernel: the judge builds the student's ``SmallCNN`` there, sends it
inputs drawn from ``gen`` and reads back class scores, layer descriptions, parameter counts and gradient
norms as data (small helper lambdas of this file, evaluated in the kernel, run the student's module: put it in
train or eval mode, count its parameters, back-propagate a loss). The decisions (shapes, batch independence,
dropout randomness, the parameter count of the architecture) are made here.

The two checkpoints (Questions 3 and 4) are graded as data, never by the student's Python:

1. the judge reads the file the notebook saved (``student.read_file``) with ``torch.load(weights_only=True)``:
   missing, corrupt, pickled-model and metadata problems are decided here;
2. the kernel rebuilds ``<architecture>(**model_kwargs)`` from the class named in the checkpoint (the class is
   the student's own: any architecture for CIFAR-10, and even SmallCNN's parameter names are the student's
   choice), loads the weights and exports the model with ``torch.jit.trace`` (TorchScript: a graph of tensor
   operations) to bytes;
3. here the graph is loaded with ``torch.jit.load``, its weights are compared with the checkpoint's (the graded
   model is the submitted file, nothing the kernel made up), and it classifies test images that the judge
   loads itself (``eep590_utils.data``; the kernel never sees them): all of MNIST's held-out test images
   (2,000 with the offline copy) and the first 2,000 CIFAR-10 test images, in chunks of 250 on the CPU.

Scores are linear in accuracy, as announced in the notebook: MNIST 0 at 90% or less, full at 97% or more;
CIFAR-10 0 at 40% or less, full at 70% or more (``Score`` carries the fraction and the message).

Question 6 (transfer learning) is probed like SmallCNN: ``mnist_to_cifar_input`` on random MNIST-normalized
batches is compared with a reference computed here (border, then every value), and ``freeze_features`` is run
on a ``CifarFeatureCNN`` built in the kernel whose parameter flags and weights are read back as data. The
pretrained checkpoint is never needed for grading (the notebook trains with it only when not grading).
"""
import functools
import io
import math
import time
import warnings

import numpy as np
import torch

from eep590_utils.checks import check_close, check_shape, check_true, check_type
from eep590_utils.grading.judge import Fail, Score, StudentError, judge

# ----------------------------------------------------------------------------------------------------------
# Helpers run in the kernel (the judge's own expressions; they only drive the student's module)

_MODE = "lambda m, training: (m.train(training), None)[1]"
_OUTPUTS = "lambda m, x, n: [m(x) for _ in range(n)]"
_COUNT = "lambda m: sum(p.numel() for p in m.parameters())"
_GRADIENTS = ("lambda m, x, y: (m.train(), m.zero_grad(), "
              "__import__('torch').nn.functional.cross_entropy(m(x), y).backward(), "
              "[(n, None if p.grad is None else float(p.grad.detach().abs().sum())) "
              "for n, p in m.named_parameters()])[-1]")
_LAYERS = ("lambda m: [(type(l).__name__, "
           "(l.out_channels, list(l.kernel_size)) if isinstance(l, __import__('torch').nn.Conv2d) else "
           "l.num_features if isinstance(l, __import__('torch').nn.BatchNorm2d) else float(l.p)) "
           "for l in m.modules() if isinstance(l, (__import__('torch').nn.Conv2d, __import__('torch').nn.BatchNorm2d, "
           "__import__('torch').nn.Dropout))]")

# Rebuilds the checkpoint's model in the kernel from the class the notebook defines and exports it to TorchScript.
# exec'd in a copy of the notebook's namespace (nothing is added to the student's own).
_EXPORT_SOURCE = '''
def _eep590_export(path, example_shape):
    import io, warnings
    import numpy, torch
    from eep590_utils.training import load_checkpoint
    _, meta = load_checkpoint(path)
    cls = globals().get(meta.get("architecture"))
    model, _ = load_checkpoint(path, cls(**(meta.get("model_kwargs") or {})))
    model = model.float().eval()
    example = torch.randn(*example_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.jit.trace(model, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(exported, buffer)
    return numpy.frombuffer(buffer.getvalue(), dtype=numpy.uint8)
'''
_EXPORT = "(lambda g: (exec({source!r}, g), g['_eep590_export']({path!r}, {shape!r}))[1])(dict(globals()))"
_IS_MODULE_CLASS = ("(lambda c: isinstance(c, type) and issubclass(c, __import__('torch').nn.Module))"
                    "(globals().get({name!r}))")

CHUNK = 250  # images per forward pass (the trace's example batch has the same size)
EVAL_SECONDS = 120.0  # a model slower than this on the grader's CPU is not graded


def _randint(gen, low, high):
    """An int in [low, high] (both included), drawn from gen."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _tensor(value, name):
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    check_type(value, torch.Tensor, name)
    return value.detach().double()


def _scores(student, net, x, name, n=1):
    """n forward passes of the kernel's net on x, as float64 tensors."""
    outputs = student.call(student.eval(_OUTPUTS), net, x, n)
    return [_tensor(out, name) for out in outputs]


def _parameter_count(c_in, channels, size, classes, bias):
    total, c = 0, c_in
    for co in channels:
        total += 9 * c * co + (co if bias else 0) + 2 * co
        c = co
    return total + channels[-1] * (size // 8) ** 2 * classes + classes


# ----------------------------------------------------------------------------------------------------------
# Question 1: SmallCNN


@judge("small_cnn_output_shape")
def small_cnn_output_shape(student, gen):
    n = _randint(gen, 2, 5)
    scores = _scores(student, student.SmallCNN(), torch.randn(n, 3, 32, 32, generator=gen),
                     "SmallCNN()(x)")[0]
    check_shape(scores, (n, 10), f"SmallCNN()(x) for x of shape ({n}, 3, 32, 32)")
    channels = [_randint(gen, 4, 12) for _ in range(3)]
    classes, n = _randint(gen, 2, 12), _randint(gen, 2, 5)
    kwargs = dict(in_channels=1, num_classes=classes, channels=tuple(channels), dropout=0.2, image_size=28)
    scores = _scores(student, student.SmallCNN(**kwargs), torch.randn(n, 1, 28, 28, generator=gen),
                     "SmallCNN(...)(x)")[0]
    check_shape(scores, (n, classes), f"SmallCNN(in_channels=1, num_classes={classes}, channels={tuple(channels)}, "
                                      f"image_size=28)(x) for x of shape ({n}, 1, 28, 28)")


@judge("small_cnn_layers")
def small_cnn_layers(student, gen):
    channels = tuple(_randint(gen, 3, 24) for _ in range(3))
    p = float(_randint(gen, 1, 8)) / 10
    layers = student.call(student.eval(_LAYERS), student.SmallCNN(channels=channels, dropout=p))
    convs = [info for kind, info in layers if kind == "Conv2d"]
    norms = [info for kind, info in layers if kind == "BatchNorm2d"]
    drops = [info for kind, info in layers if kind not in ("Conv2d", "BatchNorm2d")]
    check_true([c for c, _ in convs] == list(channels) and all(list(k) == [3, 3] for _, k in convs),
               f"SmallCNN(channels={channels}): expected three 3x3 convolutions with {', '.join(map(str, channels))} "
               f"output channels, found {[(c, tuple(k)) for c, k in convs]}")
    check_true(list(norms) == list(channels),
               f"SmallCNN(channels={channels}): expected BatchNorm2d layers over {', '.join(map(str, channels))} "
               f"channels, found {norms}")
    check_true(len(drops) == 1 and drops[0] == p,
               f"SmallCNN(dropout={p}): expected one nn.Dropout(p={p}), found {len(drops)} dropout layer(s)"
               + (f" with p={drops}" if drops else ""))


@judge("small_cnn_train_eval_behaviour")
def small_cnn_train_eval_behaviour(student, gen):
    mode = student.eval(_MODE)
    n = _randint(gen, 4, 8)
    x = torch.randn(n, 3, 32, 32, generator=gen)
    net = student.SmallCNN(channels=(8, 16, 32), dropout=0.5)
    student.call(mode, net, True)
    _scores(student, net, x, "SmallCNN(...)(x)", n=3)  # moves the running statistics away from their start
    a, b = _scores(student, net, x, "SmallCNN(...)(x)", n=2)
    if torch.allclose(a, b):
        raise Fail("in train mode with dropout=0.5, two forward passes should differ (dropout is random)")
    student.call(mode, net, False)
    full, again = _scores(student, net, x, "SmallCNN(...)(x)", n=2)
    one = _scores(student, net, x[:1], "SmallCNN(...)(x)")[0]
    if full.shape != (n, 10) or one.shape != (1, 10):
        raise Fail(f"SmallCNN(...)(x) should have shape (N, 10), got {tuple(full.shape)} for N = {n}")
    if not torch.allclose(full[:1], one, atol=1e-5):
        raise Fail("in eval mode an image's scores should not depend on the other images of the batch")
    if not torch.equal(full, again):
        raise Fail("in eval mode two forward passes should give the same scores")

    net0 = student.SmallCNN(channels=(8, 16, 32), dropout=0.0)
    student.call(mode, net0, True)
    a, b = _scores(student, net0, x, "SmallCNN(dropout=0)(x)", n=2)
    if not torch.allclose(a, b, atol=1e-6):
        raise Fail("with dropout=0 two train-mode passes should agree")

    channels = tuple(_randint(gen, 2, 12) for _ in range(3))
    in_channels, classes, size = _randint(gen, 1, 3), _randint(gen, 2, 9), (28, 32)[_randint(gen, 0, 1)]
    count = student.call(student.eval(_COUNT), student.SmallCNN(in_channels=in_channels, num_classes=classes,
                                                                channels=channels, image_size=size))
    if count not in (_parameter_count(in_channels, channels, size, classes, True),
                     _parameter_count(in_channels, channels, size, classes, False)):
        raise Fail("the number of parameters does not match three 3x3 convolutions, three BatchNorm2d layers and "
                   "one linear layer")

    grads = student.call(student.eval(_GRADIENTS), net, x, torch.arange(n) % 10)
    without = [name for name, g in grads if g is None or not g > 0]
    if not grads or without:
        raise Fail("every parameter should receive a gradient" + (f" (none for {without[:3]})" if without else ""))


# ----------------------------------------------------------------------------------------------------------
# Questions 3 and 4: the saved checkpoints


@functools.cache
def _test_images(dataset):
    """(normalized float32 (N, C, H, W) images, int64 labels): what the checkpoint is graded on."""
    from eep590_utils.data import (
        CIFAR10_MEAN,
        CIFAR10_STD,
        MNIST_MEAN,
        MNIST_STD,
        load_cifar10,
        load_mnist,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline MNIST copy warns that it splits its test set
        if dataset == "mnist":
            _, _, images, labels = load_mnist()
            images, mean, std = images[:, None], MNIST_MEAN, MNIST_STD
        else:
            _, _, images, labels = load_cifar10()
            images, labels = images[:2000].transpose(0, 3, 1, 2), labels[:2000]
            mean, std = CIFAR10_MEAN, CIFAR10_STD
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255
    x = (x - torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)) / torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def _read_checkpoint(student, path):
    """(state_dict, metadata) of the checkpoint file, read here with weights_only=True."""
    data = student.read_file(path)
    if not data:
        raise Fail(f"{path} is corrupt: the file is empty (interrupted save?)")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to load is the file's
        if "Unsupported global" in str(error):
            raise Fail(f"{path} holds Python objects, not only tensors and plain values (a whole pickled model, "
                       "torch.save(model, ...)?): save the model's state_dict with save_checkpoint(model, path)") from None
        raise Fail(f"{path} is corrupt or not a PyTorch checkpoint (an interrupted save or copy?)") from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        state, meta = payload["state_dict"], payload.get("metadata") or {}
    elif isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        state, meta = payload, {}
    else:
        raise Fail(f"{path} does not hold a state_dict: save models with save_checkpoint(model, path, "
                   "architecture=..., model_kwargs=...)")
    if not isinstance(meta, dict):
        meta = {}
    return state, meta


def _exported_model(student, path, meta, example_shape):
    """The checkpoint's model, rebuilt in the kernel from the notebook's class, as a TorchScript module here."""
    name = meta.get("architecture")
    kwargs = meta.get("model_kwargs") or {}
    if not isinstance(name, str) or not name.isidentifier() or not student.eval(_IS_MODULE_CLASS.format(name=name)):
        raise Fail(f"{path}: its metadata says architecture={name!r}, which is not an nn.Module class defined in this "
                   "notebook. Save with save_checkpoint(model, path, architecture=type(model).__name__, "
                   "model_kwargs=<the arguments of the class>) and keep that class in the notebook.")
    try:
        data = student.eval(_EXPORT.format(source=_EXPORT_SOURCE, path=path, shape=tuple(example_shape)))
    except StudentError as error:
        raise Fail(f"{path}: rebuilding {name}(**{kwargs}) from it, loading its weights and running it on a batch of "
                   f"{tuple(example_shape)} images failed: {error.ename}: {error.evalue}") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
        raise Fail(f"{path}: the model {name}(**{kwargs}) could not be exported for grading")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            model = torch.jit.load(io.BytesIO(data.tobytes()), map_location="cpu")
    except Exception:  # noqa: BLE001 - an archive that does not load is not gradable
        raise Fail(f"{path}: the model {name}(**{kwargs}) could not be exported for grading") from None
    return model.eval(), name, kwargs


def _check_weights(model, state, path, name):
    """The exported model holds exactly the checkpoint's weights."""
    exported = model.state_dict()
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in exported):
            state = {k[len(prefix):]: v for k, v in state.items()}
    for key, value in state.items():
        mine = exported.get(key)
        if not isinstance(value, torch.Tensor) or mine is None or mine.shape != value.shape \
                or not torch.equal(mine.to(value.dtype), value):
            raise Fail(f"{path}: the {name} rebuilt in the notebook does not hold the weights saved in the file "
                       f"({key}); grade the model that is saved, not one changed afterwards")


def _accuracy(model, x, labels, path):
    """Accuracy of the TorchScript model on (x, labels), in chunks; Fail when its outputs are not class scores."""
    correct, start = 0, time.monotonic()
    with torch.no_grad():
        for begin in range(0, len(x), CHUNK):
            chunk = x[begin:begin + CHUNK]
            try:
                out = model(chunk)
            except Exception as error:  # noqa: BLE001 - the model's own failure
                raise Fail(f"{path}: the model failed on a batch of {tuple(chunk.shape)} test images "
                           f"({type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''})") from None
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(chunk):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise Fail(f"{path}: the model should return (N, 10) class scores for N images, it returned {shape}")
            correct += int((out.argmax(1) == labels[begin:begin + CHUNK]).sum())
            elapsed = time.monotonic() - start
            if elapsed > EVAL_SECONDS and begin + CHUNK < len(x):
                raise Fail(f"{path}: the model is too slow on a CPU ({elapsed:.0f} s for {begin + CHUNK} images): "
                           f"make it smaller so that {len(x)} images take well under a minute")
    return correct / len(x)


def _grade_checkpoint(student, path, dataset, floor, full, points):
    state, meta = _read_checkpoint(student, path)
    x, labels = _test_images(dataset)
    model, name, kwargs = _exported_model(student, path, meta, (CHUNK,) + tuple(x.shape[1:]))
    _check_weights(model, state, path, name)
    acc = _accuracy(model, x, labels, path)
    fraction = min(1.0, max(0.0, (acc - floor) / (full - floor))) if math.isfinite(acc) else 0.0
    return Score(fraction, f"{path}: {name}(**{kwargs}) classifies {acc:.2%} of {len(labels)} held-out test images "
                           f"correctly -> {points * fraction:.2f}/{points} points (0 at {floor:.0%} or less, all at "
                           f"{full:.0%} or more)")


@judge("mnist_model_accuracy")
def mnist_model_accuracy(student, gen):
    return _grade_checkpoint(student, "mnist_model.pt", "mnist", floor=0.90, full=0.97, points=8)


@judge("cifar10_model_accuracy")
def cifar10_model_accuracy(student, gen):
    return _grade_checkpoint(student, "cifar10_model.pt", "cifar10", floor=0.40, full=0.70, points=20)


# ----------------------------------------------------------------------------------------------------------
# Question 6: transfer learning (the input conversion and freezing the features)

_PARAMETER_FLAGS = "lambda m: [(n, bool(p.requires_grad)) for n, p in m.named_parameters()]"
_STATE = "lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}"
_SAME = "lambda a, b: a is b"


def _mnist_batch(gen, n):
    """(N, 1, 28, 28) MNIST-normalized images: random intensities in [0, 1], a third of them exactly 0 (black)."""
    from eep590_utils.data import MNIST_MEAN, MNIST_STD

    pixels = torch.rand(n, 1, 28, 28, generator=gen)
    pixels = pixels * (torch.rand(n, 1, 28, 28, generator=gen) > 1 / 3)
    return (pixels - MNIST_MEAN[0]) / MNIST_STD[0]


def _cifar_input_reference(x):
    from eep590_utils.data import CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD

    x = x.double()
    pixels = torch.nn.functional.pad(x * MNIST_STD[0] + MNIST_MEAN[0], (2, 2, 2, 2)).expand(-1, 3, -1, -1)
    mean = torch.tensor(CIFAR10_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _cifar_input(student, x):
    out = _tensor(student.mnist_to_cifar_input(x), "mnist_to_cifar_input(x)")
    check_shape(out, (x.shape[0], 3, 32, 32), f"mnist_to_cifar_input(x) for x of shape {tuple(x.shape)}")
    return out


@judge("mnist_to_cifar_input_shape_and_border")
def mnist_to_cifar_input_shape_and_border(student, gen):
    x = _mnist_batch(gen, _randint(gen, 2, 5))
    out, expected = _cifar_input(student, x), _cifar_input_reference(x)
    for name, index in (("top rows", (slice(None), slice(None), slice(0, 2))),
                        ("bottom rows", (slice(None), slice(None), slice(30, 32))),
                        ("left columns", (slice(None), slice(None), slice(None), slice(0, 2))),
                        ("right columns", (slice(None), slice(None), slice(None), slice(30, 32)))):
        check_close(out[index], expected[index], f"the two {name} of mnist_to_cifar_input(x) (black: intensity 0, "
                                                 "normalized as CIFAR-10)", rtol=1e-4, atol=1e-4)


@judge("mnist_to_cifar_input_values")
def mnist_to_cifar_input_values(student, gen):
    for n in (_randint(gen, 1, 3), _randint(gen, 4, 8)):
        x = _mnist_batch(gen, n)
        check_close(_cifar_input(student, x), _cifar_input_reference(x),
                    f"mnist_to_cifar_input(x) for x of shape {tuple(x.shape)}", rtol=1e-4, atol=1e-4)


@judge("freeze_features_only_head_trains")
def freeze_features_only_head_trains(student, gen):
    classes = _randint(gen, 2, 12)
    net = student.eval(f"CifarFeatureCNN(num_classes={classes})")
    before = student.call(student.eval(_STATE), net)
    returned = student.freeze_features(net)
    if not student.call(student.eval(_SAME), returned, net):
        raise Fail("freeze_features(model) should return the model it was given (changed in place)")
    flags = student.call(student.eval(_PARAMETER_FLAGS), net)
    frozen_head = [name for name, trainable in flags if name.startswith("head.") and not trainable]
    trainable_features = [name for name, trainable in flags if not name.startswith("head.") and trainable]
    if frozen_head:
        raise Fail(f"the head should stay trainable, but {', '.join(frozen_head)} no longer require a gradient")
    if trainable_features:
        raise Fail(f"{len(trainable_features)} parameters of the features still require a gradient "
                   f"(e.g. {', '.join(trainable_features[:3])}): every parameter of model.features should be frozen")
    after = student.call(student.eval(_STATE), net)
    changed = [k for k in before if k not in after or not torch.equal(_tensor(before[k], k), _tensor(after[k], k))]
    if changed:
        raise Fail(f"freeze_features should leave the weights as they are, it changed {', '.join(changed[:3])}")
