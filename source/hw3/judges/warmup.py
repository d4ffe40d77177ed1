"""Judges of hw3/warmup.ipynb (Part B: parameter and multiply-add counts).

Every answer is compared with a count made here from PyTorch layers run on the meta device (shapes only):
parameters are ``sum(p.numel())``, MACs are output elements x weights per output element of each Conv2d.
The stacks of B2 are checked at values of C, H, W drawn from ``gen``; the receptive fields are found with a
gradient through layers built here.
"""
import torch
from torch import nn

from eep590_utils.checks import check_true
from eep590_utils.grading.judge import judge

# ------------------------------------------------------------------------------------------ references


def _conv_macs(layers, x):
    """(MACs of the Conv2d layers applied in order to x, output)."""
    macs = 0
    with torch.no_grad():
        for layer in layers:
            y = layer(x)
            if isinstance(layer, nn.Conv2d):
                macs += y.numel() * layer.weight[0].numel()
            x = y
    return macs, x


def _params(layers):
    return sum(p.numel() for layer in layers for p in layer.parameters())


def _b1_reference():
    x = torch.zeros(1, 128, 56, 56, device="meta")
    standard = [nn.Conv2d(128, 256, 3, padding=1, device="meta")]
    separable = [nn.Conv2d(128, 128, 3, padding=1, groups=128, device="meta"), nn.Conv2d(128, 256, 1, device="meta")]
    return {"standard_params": _params(standard), "standard_macs": _conv_macs(standard, x)[0],
            "separable_params": _params(separable), "separable_macs": _conv_macs(separable, x)[0]}


def _stack_layers(C, device=None):
    """The five stacks of B2 (each a list of layers applied in order)."""
    half = C // 2

    def conv(*args, **kwargs):
        return nn.Conv2d(*args, device=device, **kwargs)

    return [
        [conv(C, C, 7, padding=3)],
        [conv(C, C, (1, 7), padding=(0, 3)), conv(C, C, (7, 1), padding=(3, 0))],
        [nn.ZeroPad2d((1, 2, 1, 2)), conv(C, C, 4), nn.ZeroPad2d((1, 2, 1, 2)), conv(C, C, 4)],
        [conv(C, C, 3, padding=1) for _ in range(3)],
        [conv(C, half, 1), conv(half, half, 3, padding=1), conv(half, C, 1)],
    ]


def _stack_counts(C, H, W):
    """([parameters of each stack], [MACs of each stack]) on one H x W x C input (a (1, C, H, W) tensor here)."""
    params, macs = [], []
    for layers in _stack_layers(C, device="meta"):
        m, out = _conv_macs(layers, torch.zeros(1, C, H, W, device="meta"))
        assert tuple(out.shape) == (1, C, H, W), "internal check of the reference stacks"
        params.append(_params(layers))
        macs.append(m)
    return params, macs


def _receptive_fields(gen, C=4, size=15):
    """Side of the input region that influences the centre output pixel of each stack (by a gradient)."""
    sides = []
    for layers in _stack_layers(C):
        with torch.no_grad():
            for p in (p for layer in layers for p in layer.parameters()):
                p.copy_(0.1 + torch.rand(p.shape, generator=gen))  # positive: no cancellation
        x = torch.zeros(1, C, size, size, requires_grad=True)
        y = x
        for layer in layers:
            y = layer(y)
        y[0, :, size // 2, size // 2].sum().backward()
        rows = (x.grad[0].abs().sum(0).sum(1) != 0).nonzero()
        sides.append(int(rows.max() - rows.min() + 1))
    return sides


def _inception_reference():
    """{(naive|reduced, macs|channels): value} of the two Inception modules of B3 on a 32 x 32 x 256 input."""
    def conv(*args, **kwargs):
        return nn.Conv2d(*args, device="meta", **kwargs)

    def pool():
        return nn.MaxPool2d(3, stride=1, padding=1)

    modules = {
        "naive": [[conv(256, 128, 1)], [conv(256, 192, 3, padding=1)], [conv(256, 96, 5, padding=2)], [pool()]],
        "reduced": [[conv(256, 128, 1)], [conv(256, 128, 1), conv(128, 192, 3, padding=1)],
                    [conv(256, 32, 1), conv(32, 96, 5, padding=2)], [pool(), conv(256, 64, 1)]],
    }
    out = {}
    for name, branches in modules.items():
        macs, channels = 0, 0
        for layers in branches:
            m, y = _conv_macs(layers, torch.zeros(1, 256, 32, 32, device="meta"))
            assert tuple(y.shape[2:]) == (32, 32), "internal check of the reference branches"
            macs, channels = macs + m, channels + y.shape[1]
        out[name, "macs"], out[name, "channels"] = macs, channels
    return out


# ------------------------------------------------------------------------------------------ helpers


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(student, name, positive=True):
    v = student.value(name)
    check_true(v is not None, f"{name} is None: replace None by your answer (a number)")
    check_true(_is_number(v), f"{name} should be a number, got {v!r}"[:300])
    if positive:
        check_true(v > 0, f"{name} should be a positive number, got {v!r}")
    return v


def _five(values, name, verb="return"):
    check_true(isinstance(values, (list, tuple)) and len(values) == 5,
               f"{name} should {verb} a list of 5 numbers, got {values!r}"[:300])
    for i, v in enumerate(values):
        check_true(_is_number(v), f"entry {i} of {name} (stack {i + 1}) should be a number, got {v!r}"[:300])
    return values


def _cases(gen, n=4):
    """(C, H, W) cases: C even from 2 to 128, H and W from 3 to 20 (C=2 always among them)."""
    cases = [(2, int(torch.randint(3, 9, (1,), generator=gen)), int(torch.randint(3, 9, (1,), generator=gen)))]
    for _ in range(n - 1):
        C = 2 * int(torch.randint(2, 65, (1,), generator=gen))
        H, W = (int(v) for v in torch.randint(3, 21, (2,), generator=gen))
        cases.append((C, H, W))
    return cases


# ------------------------------------------------------------------------------------------ B1


def _b1(student, name, what):
    got = _number(student, name)
    check_true(abs(got - _b1_reference()[name]) < 0.5,
               f"{name} is not the right count: check the formula and what the conventions above include ({what})")


@judge("standard_params_value")
def standard_params_value(student, gen):
    _b1(student, "standard_params", "weights and biases")


@judge("standard_macs_value")
def standard_macs_value(student, gen):
    _b1(student, "standard_macs", "one multiply-add per weight per output element")


@judge("separable_params_value")
def separable_params_value(student, gen):
    _b1(student, "separable_params", "weights and biases of both convolutions")


@judge("separable_macs_value")
def separable_macs_value(student, gen):
    _b1(student, "separable_macs", "one multiply-add per weight per output element, both convolutions")


# ------------------------------------------------------------------------------------------ B2


@judge("conv_stack_params_returns_five")
def conv_stack_params_returns_five(student, gen):
    p = _five(student.conv_stack_params(64), "conv_stack_params(64)")
    check_true(abs(p[0] - (49 * 64 ** 2 + 64)) < 0.5,
               f"parameters of stack 1 at C=64 should be {49 * 64 ** 2 + 64}, got {p[0]}")


@judge("conv_stack_params_stacks_1_to_4")
def conv_stack_params_stacks_1_to_4(student, gen):
    for C, H, W in _cases(gen):
        want = _stack_counts(C, H, W)[0]
        got = _five(student.conv_stack_params(C), f"conv_stack_params({C})")
        for i in range(4):
            check_true(abs(got[i] - want[i]) < 0.5, f"parameters of stack {i + 1} are wrong at C={C} (remember the biases)")


@judge("conv_stack_params_bottleneck")
def conv_stack_params_bottleneck(student, gen):
    for C, H, W in _cases(gen):
        want = _stack_counts(C, H, W)[0]
        got = _five(student.conv_stack_params(C), f"conv_stack_params({C})")
        check_true(abs(got[4] - want[4]) < 0.5, f"parameters of stack 5 are wrong at C={C}")


@judge("conv_stack_macs_stacks_1_to_4")
def conv_stack_macs_stacks_1_to_4(student, gen):
    m = _five(student.conv_stack_macs(64, 32, 32), "conv_stack_macs(64, 32, 32)")
    check_true(abs(m[0] - 49 * 32 * 32 * 64 ** 2) < 0.5,
               f"MACs of stack 1 at C=64, H=W=32 should be {49 * 32 * 32 * 64 ** 2}, got {m[0]}")
    for C, H, W in _cases(gen):
        want = _stack_counts(C, H, W)[1]
        got = _five(student.conv_stack_macs(C, H, W), f"conv_stack_macs({C}, {H}, {W})")
        for i in range(4):
            check_true(abs(got[i] - want[i]) < 0.5, f"MACs of stack {i + 1} are wrong at C={C}, H={H}, W={W}")


@judge("conv_stack_macs_bottleneck")
def conv_stack_macs_bottleneck(student, gen):
    for C, H, W in _cases(gen):
        want = _stack_counts(C, H, W)[1]
        got = _five(student.conv_stack_macs(C, H, W), f"conv_stack_macs({C}, {H}, {W})")
        check_true(abs(got[4] - want[4]) < 0.5, f"MACs of stack 5 are wrong at C={C}, H={H}, W={W}")


@judge("conv_stack_receptive_fields_value")
def conv_stack_receptive_fields_value(student, gen):
    got = _five(student.value("conv_stack_receptive_fields"), "conv_stack_receptive_fields", verb="be")
    check_true(got[0] == 7, "stack 1 (one 7x7 convolution) has a 7x7 receptive field")
    want = _receptive_fields(gen)
    for i in range(5):
        check_true(got[i] == want[i], f"the receptive field of stack {i + 1} is wrong")


@judge("cheapest_7x7_stack_value")
def cheapest_7x7_stack_value(student, gen):
    got = student.value("cheapest_7x7_stack")
    check_true(_is_number(got) and got in (1, 2, 3, 4, 5),
               f"cheapest_7x7_stack should be a stack number from 1 to 5, got {got!r}"[:300])
    rf = _receptive_fields(gen)
    for C, H, W in _cases(gen, n=2):
        macs = _stack_counts(C, H, W)[1]
        best = min((m, i + 1) for i, m in enumerate(macs) if rf[i] == 7)[1]
        check_true(got == best, "that is not the cheapest stack among those with a 7x7 receptive field")


# ------------------------------------------------------------------------------------------ B3


def _b3(student, name, module, kind):
    got = _number(student, name)
    check_true(abs(got - _inception_reference()[module, kind]) < 0.5, f"{name} is not right: check every branch")


@judge("naive_macs_value")
def naive_macs_value(student, gen):
    _b3(student, "naive_macs", "naive", "macs")


@judge("naive_out_channels_value")
def naive_out_channels_value(student, gen):
    _b3(student, "naive_out_channels", "naive", "channels")


@judge("reduced_macs_value")
def reduced_macs_value(student, gen):
    _b3(student, "reduced_macs", "reduced", "macs")


@judge("reduced_out_channels_value")
def reduced_out_channels_value(student, gen):
    _b3(student, "reduced_out_channels", "reduced", "channels")
