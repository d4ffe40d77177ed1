"""Judges of hw2/worked_problems.ipynb: every autograded cell is decided here, outside the student's kernel.

The answers are the handout's fixed examples (read with ``student.value``); the formula functions
(``conv_num_params``, ``conv_output_shape``, ``pool_output_shape``, ``receptive_field``) are probed on
cases drawn from ``gen`` and compared with PyTorch layers built here; the LeNet-5 and VGG16 references are
computed here from the architectures (VGG16 on the ``meta`` device: shapes and parameter counts, no memory).
Hidden checks never say the right value (not even a shape the question leaves to the student).
"""
import functools

import numpy as np
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_true, check_type
from eep590_utils.grading.judge import Fail, judge

SOBEL = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]


def _randint(gen, low, high):
    """An int in [low, high] (both included), drawn from gen."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _numeric(value, name, shape, hint=None):
    """value as a float64 array of the given shape (Fail with a message otherwise).

    hint: said instead of the expected shape, where the shape is part of the answer.
    """
    if value is None:
        raise Fail(f"{name} is None: assign your answer to it")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{name} should be an array of numbers, got {type(value).__name__}") from None
    if hint is not None:
        if array.shape != tuple(shape):
            got = "a scalar" if array.ndim == 0 else f"an array of shape {array.shape}"
            raise Fail(f"{name} has the wrong shape (got {got}): {hint}")
        return array
    check_shape(array, shape, name)  # says 'should be a 1-D array of 19 values, got a scalar (...)' and the like
    return array


def _int_answer(student, name):
    """The notebook variable ``name`` as an int (Fail unless it is an integer)."""
    value = student.value(name)
    if value is None:
        raise Fail(f"{name} is None: assign your answer to it")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise Fail(f"{name} should be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _ints(value, name, length):
    """value as a tuple of ``length`` numbers (Fail otherwise)."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        raise Fail(f"{name} should return a tuple of {length} numbers, it returned {type(value).__name__}"
                   + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise Fail(f"{name} should return numbers, it returned {value!r}")
    return tuple(value)


# ----------------------------------------------------------------------------------------------------------
# Question 2: 1-D convolution of a rect with a decaying exponential


def _rect_response(first, last):
    """y(n), n = -6..12, for x(k) = 1 on k = first..last and h(n) = (1/2)^n u(n)."""
    ref = np.zeros(19)
    for i, m in enumerate(range(-6, 13)):
        for k in range(first, last + 1):
            if m - k >= 0:
                ref[i] += 0.5 ** (m - k)
    return ref


def _first_wrong(got, ref, ns):
    """'n = k' for the first n (of ns) where got and ref disagree."""
    bad = np.flatnonzero(~np.isclose(got, ref, atol=1e-6))
    return f"n = {ns[bad[0]]}" if bad.size else ""


N_AXIS = list(range(-6, 13))


@judge("y_rect_rising_part")
def y_rect_rising_part(student, gen):
    y = _numeric(student.value("y_rect"), "y_rect", (19,))
    ref = _rect_response(0, 6)
    if not np.allclose(y[:6], ref[:6], atol=1e-6):
        raise Fail(f"y_rect is wrong before the rect starts (n < 0), first at {_first_wrong(y[:6], ref[:6], N_AXIS)}")
    if not np.allclose(y[6:13], ref[6:13], atol=1e-6):
        raise Fail("y_rect is wrong while the rect is entering the filter (0 <= n <= 6), first at "
                   + _first_wrong(y[6:13], ref[6:13], N_AXIS[6:13]))


@judge("y_rect_decaying_part")
def y_rect_decaying_part(student, gen):
    y = _numeric(student.value("y_rect"), "y_rect", (19,))
    ref = _rect_response(0, 6)
    if not np.allclose(y[13:], ref[13:], atol=1e-6):
        raise Fail("y_rect is wrong after the rect has ended (n >= 7), first at "
                   + _first_wrong(y[13:], ref[13:], N_AXIS[13:]) + ": which samples of x still overlap h there?")


@judge("y2_rect_zero_before_shift")
def y2_rect_zero_before_shift(student, gen):
    y2 = _numeric(student.value("y2_rect"), "y2_rect", (19,))
    ref = _rect_response(5, 11)
    if not np.allclose(y2[:11], ref[:11], atol=1e-6):
        raise Fail(f"y2_rect is wrong before the shifted rect reaches the filter, first at {_first_wrong(y2[:11], ref[:11], N_AXIS)}: "
                   "where does x2(n) = x(n - 5) start?")


@judge("y2_rect_values")
def y2_rect_values(student, gen):
    y2 = _numeric(student.value("y2_rect"), "y2_rect", (19,))
    if not np.allclose(y2, _rect_response(5, 11), atol=1e-6):
        raise Fail("y2_rect is wrong: compare it with y_rect, entry by entry")


# ----------------------------------------------------------------------------------------------------------
# Question 2c: a true 2-D convolution of the 5 x 5 ramp with the Sobel kernel


def _true_conv(stride, pad):
    x = torch.arange(1, 26, dtype=torch.float64).reshape(1, 1, 5, 5)
    flipped = torch.flip(torch.tensor(SOBEL, dtype=torch.float64), dims=(0, 1)).reshape(1, 1, 3, 3)
    return F.conv2d(x, flipped, stride=stride, padding=pad)[0, 0].numpy()


S1P1_HINT = "with stride 1 and padding 1, how many window positions fit along each axis?"
S2P1_HINT = "with stride 2 and padding 1, how many window positions fit along each axis?"


def _magnitudes(got, ref, name):
    if not np.allclose(np.abs(got), np.abs(ref), atol=1e-6):
        raise Fail(f"the magnitudes of the entries of {name} are wrong (not only their signs)")


@judge("y_2d_valid_magnitudes")
def y_2d_valid_magnitudes(student, gen):
    _magnitudes(_numeric(student.value("y_2d_valid"), "y_2d_valid", (3, 3)), _true_conv(1, 0), "y_2d_valid")


@judge("y_2d_valid_values")
def y_2d_valid_values(student, gen):
    got = _numeric(student.value("y_2d_valid"), "y_2d_valid", (3, 3))
    ref = _true_conv(1, 0)
    if np.allclose(got, -ref):
        raise Fail("y_2d_valid has the wrong sign everywhere: was the kernel flipped, as a true convolution requires?")
    if not np.allclose(got, ref, atol=1e-6):
        raise Fail("y_2d_valid is wrong")


@judge("y_2d_s1_p1_magnitudes")
def y_2d_s1_p1_magnitudes(student, gen):
    ref = _true_conv(1, 1)
    _magnitudes(_numeric(student.value("y_2d_s1_p1"), "y_2d_s1_p1", ref.shape, S1P1_HINT), ref, "y_2d_s1_p1")


@judge("y_2d_s1_p1_values")
def y_2d_s1_p1_values(student, gen):
    got = _numeric(student.value("y_2d_s1_p1"), "y_2d_s1_p1", (5, 5), S1P1_HINT)
    ref = _true_conv(1, 1)
    if np.allclose(got, -ref):
        raise Fail("y_2d_s1_p1 has the wrong sign everywhere: was the kernel flipped?")
    if not np.allclose(got[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-6):
        raise Fail("y_2d_s1_p1 is wrong in its interior (away from the padding)")
    if not np.allclose(got, ref, atol=1e-6):
        raise Fail("y_2d_s1_p1 is wrong on its border, where the kernel overlaps the zero padding")


@judge("y_2d_s2_p1_magnitudes")
def y_2d_s2_p1_magnitudes(student, gen):
    ref = _true_conv(2, 1)
    _magnitudes(_numeric(student.value("y_2d_s2_p1"), "y_2d_s2_p1", ref.shape, S2P1_HINT), ref, "y_2d_s2_p1")


@judge("y_2d_s2_p1_values")
def y_2d_s2_p1_values(student, gen):
    got = _numeric(student.value("y_2d_s2_p1"), "y_2d_s2_p1", (3, 3), S2P1_HINT)
    ref = _true_conv(2, 1)
    if np.allclose(got, -ref):
        raise Fail("y_2d_s2_p1 has the wrong sign everywhere: was the kernel flipped?")
    if not np.allclose(got, ref, atol=1e-6):
        raise Fail("y_2d_s2_p1 is wrong: with stride 2, which windows of the padded input are used?")


# ----------------------------------------------------------------------------------------------------------
# Question 3: formulas for conv and pool layers


@judge("conv_num_params_example")
def conv_num_params_example(student, gen):
    got = student.conv_num_params(3, 8, 16)
    check_type(got, (tuple, list), "conv_num_params(3, 8, 16)")
    check_close(np.array(got), np.array([1152, 16]), "conv_num_params(3, 8, 16) (weights, biases)")


@judge("conv_num_params_general")
def conv_num_params_general(student, gen):
    for _ in range(5):
        K, C, Fn = _randint(gen, 1, 7), _randint(gen, 1, 12), _randint(gen, 1, 12)
        conv = torch.nn.Conv2d(C, Fn, K)
        want = (conv.weight.numel(), conv.bias.numel())
        got = _ints(student.conv_num_params(K, C, Fn), f"conv_num_params({K}, {C}, {Fn})", 2)
        if tuple(float(v) for v in got) != tuple(float(v) for v in want):
            raise Fail(f"conv_num_params is wrong for K={K}, C={C}, F={Fn}")


@judge("conv_output_shape_example")
def conv_output_shape_example(student, gen):
    check_close(np.array(student.conv_output_shape(32, 32, 3, 5, 2, 1, 6)), np.array([32, 32, 6]),
                "conv_output_shape(H=32, W=32, C=3, K=5, P=2, S=1, F=6)")


def _conv_cases(gen, count=6):
    """(H, W, C, K, P, S, F): non-square inputs, paddings 0 to 2 (most cases padded), strides 1 to 3."""
    for i in range(count):
        K = _randint(gen, 1, 5)
        P = _randint(gen, 1, 2) if i % 3 else _randint(gen, 0, 2)
        S = (_randint(gen, 1, 3) if i > 1 else 1) if i else 2  # case 1 has stride 1: H and W never round alike
        H, W = _randint(gen, max(K, 5), 15), _randint(gen, max(K, 5), 15)
        if i == 0 and (H - K + 2 * P) % 2 == 0:
            H += 1  # one case where the stride does not divide evenly (floor, not round or ceil)
        if H == W:
            W += 1  # never square: (H, W) swapped must show
        yield H, W, _randint(gen, 1, 4), K, P, S, _randint(gen, 1, 8)


@judge("conv_output_shape_general")
def conv_output_shape_general(student, gen):
    for H, W, C, K, P, S, Fn in _conv_cases(gen):
        out = torch.nn.Conv2d(C, Fn, K, stride=S, padding=P)(torch.zeros(1, C, H, W))
        want = (out.shape[2], out.shape[3], out.shape[1])
        case = f"H={H}, W={W}, C={C}, K={K}, P={P}, S={S}, F={Fn}"
        got = _ints(student.conv_output_shape(H, W, C, K, P, S, Fn), f"conv_output_shape for {case}", 3)
        if not all(float(g) == float(w) for g, w in zip(got, want)):
            raise Fail(f"conv_output_shape is wrong for {case}")


@judge("pool_output_shape_example")
def pool_output_shape_example(student, gen):
    check_close(np.array(student.pool_output_shape(28, 28, 10, 2, 2)), np.array([14, 14, 10]),
                "pool_output_shape(H=28, W=28, C=10, K=2, S=2)")


@judge("pool_output_shape_general")
def pool_output_shape_general(student, gen):
    for i in range(5):
        K = _randint(gen, 2, 4)
        S = _randint(gen, 1, K - 1) if i % 2 else _randint(gen, 2, 3)  # overlapping windows, and not
        H, W, C = _randint(gen, K + 2, 14), _randint(gen, K + 2, 14), _randint(gen, 1, 6)
        if i == 0 and (H - K) % S == 0:
            H += 1  # one case where the stride does not divide evenly (floor, not round or ceil)
        out = torch.nn.MaxPool2d(K, stride=S)(torch.zeros(1, C, H, W))
        want = (out.shape[2], out.shape[3], out.shape[1])
        case = f"H={H}, W={W}, C={C}, K={K}, S={S}"
        got = _ints(student.pool_output_shape(H, W, C, K, S), f"pool_output_shape for {case}", 3)
        if not all(float(g) == float(w) for g, w in zip(got, want)):
            raise Fail(f"pool_output_shape is wrong for {case}")


@judge("receptive_field_example")
def receptive_field_example(student, gen):
    check_close(student.receptive_field(1, 3), 3, "receptive_field(L=1, K=3)")


@judge("receptive_field_general")
def receptive_field_general(student, gen):
    for _ in range(4):
        L, K = _randint(gen, 2, 5), _randint(gen, 2, 5)
        x = torch.zeros(1, 1, 41, 41, requires_grad=True)
        z = x
        for _ in range(L):
            z = F.conv2d(z, torch.ones(1, 1, K, K))
        z[0, 0, 0, 0].backward()
        want = int((x.grad[0, 0].abs().sum(dim=0) > 0).sum())  # the measured width of the receptive field
        got = student.receptive_field(L, K)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or float(got) != want:
            raise Fail(f"receptive_field is wrong for L={L}, K={K}")


# ----------------------------------------------------------------------------------------------------------
# Question 3e: receptive fields with downsampling

def _rf(layers):
    r, j = 1, 1
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
    return r


def _rf_answers(student, names):
    want = {
        "rf_pool": _rf([(2, 2)]),
        "rf_conv_conv": _rf([(3, 1), (3, 1)]),
        "rf_conv_pool_conv": _rf([(3, 1), (2, 2), (3, 1)]),
        "rf_growth_after_pool": _rf([(3, 1), (2, 2), (3, 1), (3, 1)]) - _rf([(3, 1), (2, 2), (3, 1)]),
    }
    hints = {"rf_conv_pool_conv": ": how far apart, in input pixels, are neighbouring outputs of the pool?"}
    for name in names:
        if _int_answer(student, name) != want[name]:
            raise Fail(f"{name} is wrong{hints.get(name, '')}")


@judge("rf_without_pool_correct")
def rf_without_pool_correct(student, gen):
    _rf_answers(student, ["rf_pool", "rf_conv_conv"])


@judge("rf_with_pool_correct")
def rf_with_pool_correct(student, gen):
    _rf_answers(student, ["rf_conv_pool_conv", "rf_growth_after_pool"])


# ----------------------------------------------------------------------------------------------------------
# Question 4: the network table

def _table(student):
    params, activations = student.value("table_params"), student.value("table_activations")
    check_type(params, (list, tuple), "table_params")
    check_type(activations, (list, tuple), "table_activations")
    check_true(len(params) == 7, f"table_params should have 7 entries (one per row), it has {len(params)}")
    check_true(len(activations) == 7, f"table_activations should have 7 entries (one per row), it has {len(activations)}")
    return params, activations


def _as_tuple(entry):
    if isinstance(entry, np.ndarray):
        return tuple(entry.tolist())
    return tuple(entry) if isinstance(entry, (list, tuple)) else entry


def _count(module):
    return sum(p.numel() for p in module.parameters())


@judge("network_table_conv1_params")
def network_table_conv1_params(student, gen):
    params, _ = _table(student)
    if params[1] != _count(torch.nn.Conv2d(1, 10, 3, padding=1)):
        raise Fail("the parameter count of the first CONV3-10 is wrong: how many channels does its input have, "
                   "and did you count the biases?")


@judge("network_table_fc_params")
def network_table_fc_params(student, gen):
    params, _ = _table(student)
    if params[6] != _count(torch.nn.Linear(490, 3)):
        raise Fail("the parameter count of FC-3 is wrong: did you count the biases?")


@functools.cache
def _small_net_shapes():
    """(H, W, C) after each layer of the 3(e) network, measured in PyTorch."""
    z, shapes = torch.zeros(1, 1, 28, 28), []
    for layer in [torch.nn.Conv2d(1, 10, 3, padding=1), torch.nn.MaxPool2d(2, 2),
                  torch.nn.Conv2d(10, 10, 3, padding=1), torch.nn.MaxPool2d(2, 2)]:
        z = layer(z)
        shapes.append((z.shape[2], z.shape[3], z.shape[1]))
    return tuple(shapes)


@judge("network_table_conv2_activations")
def network_table_conv2_activations(student, gen):
    _, activations = _table(student)
    if _as_tuple(activations[3]) != _small_net_shapes()[2]:
        raise Fail("the activations of the second CONV3-10 are wrong: padding 1 and stride 1 keep which sizes?")


@judge("network_table_pool2_activations")
def network_table_pool2_activations(student, gen):
    _, activations = _table(student)
    if _as_tuple(activations[4]) != _small_net_shapes()[3]:
        raise Fail("the activations of the second POOL2 are wrong (H x W x C)")


# ----------------------------------------------------------------------------------------------------------
# Question 5: global average pooling and shifts


@judge("gap_g3_correct")
def gap_g3_correct(student, gen):
    g3 = _numeric(student.value("g3"), "g3", (3,))
    if not np.allclose(g3, [0.8, 0.0, 0.3], atol=1e-6):
        raise Fail("g3 is wrong: how is x3 related to x1 or x2?")


@judge("gap_g4_correct")
def gap_g4_correct(student, gen):
    g4 = _numeric(student.value("g4"), "g4", (3,))
    if not np.allclose(g4, [0.1, 0.9, 0.0], atol=1e-6):
        raise Fail("g4 is wrong: is x4 a shifted copy of x1 or of x2? (The filters are not symmetric, so "
                   "transposing is not an invariance.)")


# ----------------------------------------------------------------------------------------------------------
# Question 5: LeNet-5 (LeCun et al. 1998, Table I: which S2 maps each C3 map reads)

C3_INPUTS = ([[(m + k) % 6 for k in range(3)] for m in range(6)] + [[(m + k) % 6 for k in range(4)] for m in range(6)]
             + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], list(range(6))])


@functools.cache
def _lenet_c1():
    """(parameters, connections) of C1, from a PyTorch layer: connections = (weights + bias) per unit x units."""
    conv = torch.nn.Conv2d(1, 6, 5)
    units = conv(torch.zeros(1, 1, 32, 32)).numel()                       # 6 x 28 x 28
    per_unit = conv.weight[0].numel() + 1                                  # 5 x 5 x 1 weights and the bias
    return _count(conv), units * per_unit


@judge("lenet_c1_params_correct")
def lenet_c1_params_correct(student, gen):
    got, (want, _) = _int_answer(student, "lenet_c1_params"), _lenet_c1()
    if got == want - 6:
        raise Fail("lenet_c1_params is wrong: did you count the biases (one per feature map)?")
    if got != want:
        raise Fail("lenet_c1_params is wrong: a parameter shared by all units of a map counts once")


@judge("lenet_c1_connections_correct")
def lenet_c1_connections_correct(student, gen):
    got, (params, want) = _int_answer(student, "lenet_c1_connections"), _lenet_c1()
    if got == params:
        raise Fail("lenet_c1_connections is wrong: that is the number of parameters; every unit has its own connections")
    if got == want // 26 * 25:
        raise Fail("lenet_c1_connections is wrong: did you count each unit's connection to its bias?")
    if got != want:
        raise Fail("lenet_c1_connections is wrong: how many units do the 6 maps have, and how many connections each?")


@judge("lenet_c3_params_correct")
def lenet_c3_params_correct(student, gen):
    got = _int_answer(student, "lenet_c3_params")
    want = sum(_count(torch.nn.Conv2d(len(inputs), 1, 5)) for inputs in C3_INPUTS)
    if got == _count(torch.nn.Conv2d(6, 16, 5)):
        raise Fail("lenet_c3_params is wrong: C3 is not fully connected to S2; count the kernels each map has")
    if got == want - len(C3_INPUTS):
        raise Fail("lenet_c3_params is wrong: did you count the biases (one per C3 map)?")
    if got != want:
        raise Fail("lenet_c3_params is wrong")


# ----------------------------------------------------------------------------------------------------------
# Question 6: VGG16, built here on the meta device (shapes and parameter counts without memory or compute)

VGG16_NAMES = (["Input"] + ["CONV3-64"] * 2 + ["POOL2"] + ["CONV3-128"] * 2 + ["POOL2"] + ["CONV3-256"] * 3 + ["POOL2"]
               + (["CONV3-512"] * 3 + ["POOL2"]) * 2 + ["FC-4096", "FC-4096", "FC-1000"])


@functools.cache
def _vgg16_reference():
    """[(name, activations, params)] for one 224 x 224 x 3 image, biases counted."""
    z = torch.zeros(1, 3, 224, 224, device="meta")
    rows = [("Input", z.numel(), 0)]
    for name in VGG16_NAMES[1:]:
        if name.startswith("CONV3-"):
            layer = torch.nn.Conv2d(z.shape[1], int(name[6:]), 3, padding=1, device="meta")
        elif name == "POOL2":
            layer = torch.nn.MaxPool2d(2, 2)
        else:
            z = z.flatten(1)
            layer = torch.nn.Linear(z.shape[1], int(name[3:]), device="meta")
        z = layer(z)
        rows.append((name, z.numel(), _count(layer)))
    return tuple(rows)


def _vgg16_rows(student):
    """The student's table, checked for its format: 22 rows (name, activations, params) with the right names."""
    table = student.vgg16_table()
    if not isinstance(table, (list, tuple)) or len(table) != len(VGG16_NAMES):
        got = f"{len(table)} rows" if isinstance(table, (list, tuple)) else type(table).__name__
        raise Fail(f"vgg16_table() should return a list of {len(VGG16_NAMES)} rows, it returned {got}")
    rows = []
    for i, (row, name) in enumerate(zip(table, VGG16_NAMES)):
        if not isinstance(row, (list, tuple)) or len(row) != 3:
            raise Fail(f"row {i} of vgg16_table() should be a tuple (layer, activations, params), got {row!r}")
        if row[0] != name:
            raise Fail(f"row {i} of vgg16_table() should be the layer {name!r}, got {row[0]!r}")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in row[1:]):
            raise Fail(f"row {i} ({name}): activations and params should be ints, got {tuple(row[1:])!r}")
        rows.append((name, int(row[1]), int(row[2])))
    return rows


def _compare_rows(rows, which, keep, what):
    """Fail naming the first row (of those kept) whose column ``which`` differs from the reference."""
    for i, (got, want) in enumerate(zip(rows, _vgg16_reference())):
        if keep(want[0]) and got[which] != want[which]:
            hint = ""
            if which == 2 and want[2] and got[2] == want[2] - int(want[0].split("-")[1]):
                hint = ": did you count the biases? (they count here)"
            raise Fail(f"row {i} ({want[0]}): the {what} are wrong{hint}")


@judge("vgg16_activations_correct")
def vgg16_activations_correct(student, gen):
    _compare_rows(_vgg16_rows(student), 1, lambda name: True, "activations")


@judge("vgg16_conv_params_correct")
def vgg16_conv_params_correct(student, gen):
    _compare_rows(_vgg16_rows(student), 2, lambda name: not name.startswith("FC"), "parameters")


@judge("vgg16_fc_params_correct")
def vgg16_fc_params_correct(student, gen):
    _compare_rows(_vgg16_rows(student), 2, lambda name: name.startswith("FC"), "parameters")


@judge("vgg16_totals_correct")
def vgg16_totals_correct(student, gen):
    reference = _vgg16_reference()
    for name, column, what in [("vgg16_total_activations", 1, "activations"), ("vgg16_total_params", 2, "parameters")]:
        got = _int_answer(student, name)
        if got == sum(row[column] for row in reference[1:]) and column == 1:
            raise Fail(f"{name} is wrong: the total includes the input's activations")
        if got != sum(row[column] for row in reference):
            raise Fail(f"{name} is wrong: it should be the sum of the {what} of all 22 rows (biases counted)")
