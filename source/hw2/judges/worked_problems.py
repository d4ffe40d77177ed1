"""Judges of hw2/worked_problems.ipynb: every autograded cell is decided here, outside the student's kernel.

The answers are the handout's fixed examples (read with ``student.value``); the formula functions
(``conv_num_params``, ``conv_output_shape``, ``pool_output_shape``, ``receptive_field``) are probed on
cases drawn from ``gen`` and compared with PyTorch layers built here. Hidden checks never say the right value.
"""
import numpy as np
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_true, check_type
from eep590_utils.grading.judge import Fail, judge

SOBEL = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]


def _randint(gen, low, high):
    """An int in [low, high] (both included), drawn from gen."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _numeric(value, name, shape):
    """value as a float64 array of the given shape (Fail with a message otherwise)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{name} should be a numeric array of shape {shape}") from None
    if array.shape != tuple(shape):
        raise Fail(f"{name} has shape {array.shape}, expected {tuple(shape)}")
    return array


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


@judge("y_rect_shape_and_start")
def y_rect_shape_and_start(student, gen):
    y = student.value("y_rect")
    check_shape(np.asarray(y), (19,), "y_rect")
    check_close(np.asarray(y)[:6], np.zeros(6), "y_rect for n = -6..-1")
    check_close(np.asarray(y)[6], 1.0, "y_rect at n = 0")


@judge("y_rect_values")
def y_rect_values(student, gen):
    y = _numeric(student.value("y_rect"), "y_rect", (19,))
    ref = _rect_response(0, 6)
    if not np.allclose(y[6:13], ref[6:13], atol=1e-6):
        raise Fail("y_rect is wrong while the rect is entering the filter (0 <= n <= 6)")
    if not np.allclose(y[13:], ref[13:], atol=1e-6):
        raise Fail("y_rect is wrong after the rect has ended (n >= 7)")


@judge("y2_rect_shape")
def y2_rect_shape(student, gen):
    check_shape(np.asarray(student.value("y2_rect")), (19,), "y2_rect")


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


@judge("y_2d_valid_shape")
def y_2d_valid_shape(student, gen):
    check_shape(np.asarray(student.value("y_2d_valid")), (3, 3), "y_2d_valid")


@judge("y_2d_valid_values")
def y_2d_valid_values(student, gen):
    got = _numeric(student.value("y_2d_valid"), "y_2d_valid", (3, 3))
    ref = _true_conv(1, 0)
    if np.allclose(got, -ref):
        raise Fail("y_2d_valid has the wrong sign everywhere: was the kernel flipped, as a true convolution requires?")
    if not np.allclose(got, ref, atol=1e-6):
        raise Fail("y_2d_valid is wrong")


@judge("y_2d_s1_p1_shape")
def y_2d_s1_p1_shape(student, gen):
    check_shape(np.asarray(student.value("y_2d_s1_p1")), (5, 5), "y_2d_s1_p1")


@judge("y_2d_s1_p1_values")
def y_2d_s1_p1_values(student, gen):
    got = _numeric(student.value("y_2d_s1_p1"), "y_2d_s1_p1", (5, 5))
    ref = _true_conv(1, 1)
    if np.allclose(got, -ref):
        raise Fail("y_2d_s1_p1 has the wrong sign everywhere: was the kernel flipped?")
    if not np.allclose(got[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-6):
        raise Fail("y_2d_s1_p1 is wrong in its interior (away from the padding)")
    if not np.allclose(got, ref, atol=1e-6):
        raise Fail("y_2d_s1_p1 is wrong on its border, where the kernel overlaps the zero padding")


@judge("y_2d_s2_p1_shape")
def y_2d_s2_p1_shape(student, gen):
    check_shape(np.asarray(student.value("y_2d_s2_p1")), (3, 3), "y_2d_s2_p1")


@judge("y_2d_s2_p1_values")
def y_2d_s2_p1_values(student, gen):
    got = _numeric(student.value("y_2d_s2_p1"), "y_2d_s2_p1", (3, 3))
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
    check_close(np.array(got), np.array([3 * 3 * 8 * 16, 16]), "conv_num_params(3, 8, 16)")


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
                "conv_output_shape(32, 32, 3, K=5, P=2, S=1, F=6)")


def _conv_cases(gen, count=6):
    """(W, H, C, K, P, S, F): non-square inputs, paddings 0 to 2 (most cases padded), strides 1 to 3."""
    for i in range(count):
        K = _randint(gen, 1, 5)
        P = _randint(gen, 1, 2) if i % 3 else _randint(gen, 0, 2)
        S = _randint(gen, 1, 3) if i else 2
        W, H = _randint(gen, max(K, 5), 15), _randint(gen, max(K, 5), 15)
        if i == 0 and (W - K + 2 * P) % 2 == 0:
            W += 1  # one case where the stride does not divide evenly (floor, not round or ceil)
        yield W, H, _randint(gen, 1, 4), K, P, S, _randint(gen, 1, 8)


@judge("conv_output_shape_general")
def conv_output_shape_general(student, gen):
    for W, H, C, K, P, S, Fn in _conv_cases(gen):
        out = torch.nn.Conv2d(C, Fn, K, stride=S, padding=P)(torch.zeros(1, C, H, W))
        want = (out.shape[3], out.shape[2], out.shape[1])
        case = f"W={W}, H={H}, C={C}, K={K}, P={P}, S={S}, F={Fn}"
        got = _ints(student.conv_output_shape(W, H, C, K, P, S, Fn), f"conv_output_shape for {case}", 3)
        if not all(float(g) == float(w) for g, w in zip(got, want)):
            raise Fail(f"conv_output_shape is wrong for {case}")


@judge("pool_output_shape_example")
def pool_output_shape_example(student, gen):
    check_close(np.array(student.pool_output_shape(28, 28, 10, 2, 2)), np.array([14, 14, 10]),
                "pool_output_shape(28, 28, 10, K=2, S=2)")


@judge("pool_output_shape_general")
def pool_output_shape_general(student, gen):
    for i in range(5):
        K = _randint(gen, 2, 4)
        S = _randint(gen, 1, K - 1) if i % 2 else _randint(gen, 2, 3)  # overlapping windows, and not
        W, H, C = _randint(gen, K + 2, 14), _randint(gen, K + 2, 14), _randint(gen, 1, 6)
        if i == 0 and (W - K) % S == 0:
            W += 1  # one case where the stride does not divide evenly (floor, not round or ceil)
        out = torch.nn.MaxPool2d(K, stride=S)(torch.zeros(1, C, H, W))
        want = (out.shape[3], out.shape[2], out.shape[1])
        case = f"W={W}, H={H}, C={C}, K={K}, S={S}"
        got = _ints(student.pool_output_shape(W, H, C, K, S), f"pool_output_shape for {case}", 3)
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

RF_NAMES = ["rf_pool", "rf_conv_conv", "rf_conv_pool_conv", "rf_growth_after_pool"]


def _rf(layers):
    r, j = 1, 1
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
    return r


@judge("downsampling_answers_are_ints")
def downsampling_answers_are_ints(student, gen):
    for name in RF_NAMES:
        check_type(student.value(name), int, name)


@judge("downsampling_answers_correct")
def downsampling_answers_correct(student, gen):
    want = {
        "rf_pool": _rf([(2, 2)]),
        "rf_conv_conv": _rf([(3, 1), (3, 1)]),
        "rf_conv_pool_conv": _rf([(3, 1), (2, 2), (3, 1)]),
        "rf_growth_after_pool": _rf([(3, 1), (2, 2), (3, 1), (3, 1)]) - _rf([(3, 1), (2, 2), (3, 1)]),
    }
    hints = {"rf_conv_pool_conv": ": how far apart, in input pixels, are neighbouring outputs of the pool?"}
    for name in RF_NAMES:
        got = student.value(name)
        if not (isinstance(got, int) and not isinstance(got, bool) and got == want[name]):
            raise Fail(f"{name} is wrong{hints.get(name, '')}")


# ----------------------------------------------------------------------------------------------------------
# Question 4: the network table

GIVEN_PARAMS = [(0, 0), (2, 0), (3, 910), (5, 0)]
GIVEN_ACTIVATIONS = [(0, (28, 28, 1)), (1, (28, 28, 10)), (2, (14, 14, 10)), (5, (490,)), (6, (3,))]


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


@judge("network_table_format")
def network_table_format(student, gen):
    params, activations = _table(student)
    for row, given in GIVEN_PARAMS:
        check_true(params[row] == given, f"table_params[{row}] is given in the table as {given}, got {params[row]}")
    for row, given in GIVEN_ACTIVATIONS:
        check_true(_as_tuple(activations[row]) == given,
                   f"table_activations[{row}] is given in the table as {given}, got {activations[row]}")


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


@judge("network_table_activations")
def network_table_activations(student, gen):
    _, activations = _table(student)
    z, shapes = torch.zeros(1, 1, 28, 28), []
    for layer in [torch.nn.Conv2d(1, 10, 3, padding=1), torch.nn.MaxPool2d(2, 2),
                  torch.nn.Conv2d(10, 10, 3, padding=1), torch.nn.MaxPool2d(2, 2)]:
        z = layer(z)
        shapes.append((z.shape[3], z.shape[2], z.shape[1]))
    if _as_tuple(activations[3]) != shapes[2]:
        raise Fail("the activations of the second CONV3-10 are wrong")
    if _as_tuple(activations[4]) != shapes[3]:
        raise Fail("the activations of the second POOL2 are wrong")


# ----------------------------------------------------------------------------------------------------------
# Question 5: global average pooling and shifts


@judge("gap_answers_shapes")
def gap_answers_shapes(student, gen):
    check_shape(np.asarray(student.value("g3")), (3,), "g3")
    check_shape(np.asarray(student.value("g4")), (3,), "g4")


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
