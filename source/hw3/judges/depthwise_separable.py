"""Judges of hw3/depthwise_separable.ipynb.

The student's ``DepthwiseSeparableConv2d`` is built in the kernel (a Remote); a small inspector defined in
the kernel (in its own namespace, not the notebook's) reports its layers as plain data and loads weights the
judge chose. Outputs are compared with a reference computed here channel by channel (depthwise: one
single-channel convolution per channel; pointwise: a matrix product over channels; batch norm by hand with
the biased batch variance in training mode and the running statistics in evaluation mode). Counts are
compared with layers built here (parameters) and run on the meta device (MACs: output elements x weights per
output element).
"""
import torch
import torch.nn.functional as F
from torch import nn

from eep590_utils.checks import check_close, check_shape, check_true
from eep590_utils.grading.judge import judge

# Runs in the student's kernel, in a namespace of its own: describes a block as data, loads weights, runs it.
_INSPECTOR = '''
import torch

def _conv(layer):
    if not isinstance(layer, torch.nn.Conv2d):
        return {"is_conv": False, "type": type(layer).__name__}
    return {"is_conv": True, "groups": layer.groups, "weight_shape": list(layer.weight.shape),
            "has_bias": layer.bias is not None, "stride": list(layer.stride), "padding": list(layer.padding)}

def _bn(layer):
    if not isinstance(layer, torch.nn.BatchNorm2d):
        return None
    return {"num_features": layer.num_features, "eps": layer.eps}

def inspect(op, m, *args):
    if op == "describe":
        return {"depthwise": _conv(getattr(m, "depthwise", None)), "pointwise": _conv(getattr(m, "pointwise", None)),
                "bn_depthwise": _bn(getattr(m, "bn_depthwise", None)), "bn_pointwise": _bn(getattr(m, "bn_pointwise", None)),
                "batch_norms": sum(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.modules())}
    if op == "state":
        return {k: v.detach().clone() for k, v in m.state_dict().items()}
    if op == "load":
        m.double()
        m.load_state_dict(args[0])
        return None
    if op == "run":
        m.train(args[1])
        with torch.no_grad():
            return m(args[0])
    raise ValueError(op)
'''


def _inspector(student):
    return student.eval(f"(lambda ns: (exec({_INSPECTOR!r}, ns), ns['inspect'])[1])({{}})")


def _block(student, cin, cout, k=3, stride=1, bias=True, bn_relu=False):
    return student.DepthwiseSeparableConv2d(cin, cout, kernel_size=k, stride=stride, bias=bias, bn_relu=bn_relu)


def _randomize(student, inspect, block, gen):
    """Load random float64 weights (and running statistics) into the student's block; returns them."""
    state = student.call(inspect, "state", block)
    new = {}
    for name, value in state.items():
        if not value.is_floating_point():
            new[name] = value
        elif name.endswith("running_var"):
            new[name] = torch.rand(value.shape, generator=gen, dtype=torch.float64) + 0.5
        else:
            new[name] = torch.randn(value.shape, generator=gen, dtype=torch.float64)
    student.call(inspect, "load", block, new)
    return new


def _check_weights(weights, cin, cout, k):
    """Fail (in words) when the block's convolutions do not have the shapes a reference can use."""
    dw, pw = weights.get("depthwise.weight"), weights.get("pointwise.weight")
    check_true(dw is not None and tuple(dw.shape) == (cin, 1, k, k),
               f"the depthwise weight of DepthwiseSeparableConv2d({cin}, {cout}, kernel_size={k}) should have shape "
               f"{(cin, 1, k, k)}, got {None if dw is None else tuple(dw.shape)}")
    check_true(pw is not None and tuple(pw.shape) == (cout, cin, 1, 1),
               f"the pointwise weight of DepthwiseSeparableConv2d({cin}, {cout}, kernel_size={k}) should have shape "
               f"{(cout, cin, 1, 1)}, got {None if pw is None else tuple(pw.shape)}")


def _rand_int(gen, lo, hi):
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


# ------------------------------------------------------------------------------------------ references


def _separable_reference(x, w_dw, b_dw, w_pw, b_pw, stride, padding):
    """Depthwise: one single-channel convolution per channel; pointwise: a matrix product over channels."""
    y = torch.cat([F.conv2d(x[:, c:c + 1], w_dw[c:c + 1], None if b_dw is None else b_dw[c:c + 1],
                            stride=stride, padding=padding) for c in range(x.shape[1])], dim=1)
    z = torch.einsum("oc,nchw->nohw", w_pw.reshape(w_pw.shape[0], -1), y)
    return z if b_pw is None else z + b_pw.view(1, -1, 1, 1)


def _bn_by_hand(y, gamma, beta, mean=None, var=None, eps=1e-5):
    """Batch norm over (N, H, W): batch statistics (biased variance) when mean/var are None."""
    if mean is None:
        mean, var = y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), unbiased=False)
    shape = (1, -1, 1, 1)
    return (y - mean.view(shape)) / torch.sqrt(var.view(shape) + eps) * gamma.view(shape) + beta.view(shape)


def _block_by_hand(w, x, stride, padding, training):
    y = _separable_reference(x, w["depthwise.weight"], None, torch.eye(x.shape[1], dtype=x.dtype), None, stride, padding)
    stats = (lambda p: (None, None)) if training else (lambda p: (w[p + ".running_mean"], w[p + ".running_var"]))
    y = torch.relu(_bn_by_hand(y, w["bn_depthwise.weight"], w["bn_depthwise.bias"], *stats("bn_depthwise")))
    z = torch.einsum("oc,nchw->nohw", w["pointwise.weight"].reshape(w["pointwise.weight"].shape[0], -1), y)
    return torch.relu(_bn_by_hand(z, w["bn_pointwise.weight"], w["bn_pointwise.bias"], *stats("bn_pointwise")))


def _conv_macs(layers, x):
    macs = 0
    with torch.no_grad():
        for layer in layers:
            y = layer(x)
            macs += y.numel() * layer.weight[0].numel()
            x = y
    return macs


# ------------------------------------------------------------------------------------------ the block


@judge("separable_conv_output_shape")
def separable_conv_output_shape(student, gen):
    cases = [(3, 8, 3, 1, 10, 10), (4, 6, 5, 1, 9, 7), (4, 6, 5, 2, 11, 9), (8, 4, 1, 1, 5, 6)]
    for _ in range(2):
        cases.append((_rand_int(gen, 1, 8), _rand_int(gen, 1, 8), 2 * _rand_int(gen, 0, 3) + 1, _rand_int(gen, 1, 3),
                      _rand_int(gen, 7, 16), _rand_int(gen, 7, 16)))
    for cin, cout, k, s, h, w in cases:
        block = _block(student, cin, cout, k=k, stride=s)
        out = student.call(block, torch.randn(2, cin, h, w, generator=gen))
        p = k // 2
        expected = (2, cout, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        check_shape(out, expected, f"output for in_channels={cin}, out_channels={cout}, kernel_size={k}, stride={s}")


@judge("separable_conv_layers")
def separable_conv_layers(student, gen):
    inspect = _inspector(student)
    d = student.call(inspect, "describe", _block(student, 6, 10, k=3))
    check_true(d["depthwise"]["is_conv"], "block.depthwise should be an nn.Conv2d")
    check_true(d["pointwise"]["is_conv"], "block.pointwise should be an nn.Conv2d")
    check_true(d["depthwise"]["groups"] == 6, f"block.depthwise.groups should be in_channels = 6, got {d['depthwise']['groups']}")
    check_true(d["depthwise"]["weight_shape"] == [6, 1, 3, 3],
               f"block.depthwise.weight should have shape (6, 1, 3, 3), got {tuple(d['depthwise']['weight_shape'])}")
    check_true(d["pointwise"]["weight_shape"] == [10, 6, 1, 1],
               f"block.pointwise.weight should have shape (10, 6, 1, 1), got {tuple(d['pointwise']['weight_shape'])}")
    cases = [(4, 8, 5, True, False), (8, 3, 3, False, False), (5, 7, 3, False, True), (3, 3, 7, True, True)]
    cases.append((_rand_int(gen, 2, 9), _rand_int(gen, 2, 9), 3, bool(_rand_int(gen, 0, 1)), bool(_rand_int(gen, 0, 1))))
    for cin, cout, k, bias, bn in cases:
        d = student.call(inspect, "describe", _block(student, cin, cout, k=k, bias=bias, bn_relu=bn))
        dw, pw = d["depthwise"], d["pointwise"]
        check_true(dw["is_conv"] and pw["is_conv"], "the block should hold two nn.Conv2d layers")
        check_true(dw["groups"] == cin, "the depthwise convolution must filter each input channel separately")
        check_true(dw["weight_shape"] == [cin, 1, k, k], "the depthwise weight has the wrong shape")
        check_true(pw["weight_shape"] == [cout, cin, 1, 1], "the pointwise weight has the wrong shape")
        check_true(dw["has_bias"] == bias, "the depthwise convolution should have a bias exactly when bias=True")
        check_true(pw["has_bias"] == bias, "the pointwise convolution should have a bias exactly when bias=True")
        if bn:
            check_true(d["bn_depthwise"] is not None, "bn_relu=True needs bn_depthwise (an nn.BatchNorm2d)")
            check_true(d["bn_pointwise"] is not None, "bn_relu=True needs bn_pointwise (an nn.BatchNorm2d)")
            check_true(d["bn_depthwise"]["num_features"] == cin, "bn_depthwise normalises the wrong number of channels")
            check_true(d["bn_pointwise"]["num_features"] == cout, "bn_pointwise normalises the wrong number of channels")
            check_true(d["batch_norms"] == 2, "bn_relu=True should add exactly two batch-norm layers")
        else:
            check_true(d["batch_norms"] == 0, "with bn_relu=False the block should have no batch norm")


@judge("separable_conv_matches_reference")
def separable_conv_matches_reference(student, gen):
    inspect = _inspector(student)
    cases = [(3, 5, 3, 1, True, 7, 6), (4, 8, 5, 1, True, 9, 7), (6, 4, 3, 2, False, 11, 10), (2, 7, 1, 1, True, 5, 6),
             (8, 16, 7, 2, True, 15, 13), (5, 5, 3, 1, True, 6, 8)]
    for cin, cout, k, s, bias, h, w in cases:
        block = _block(student, cin, cout, k=k, stride=s, bias=bias)
        weights = _randomize(student, inspect, block, gen)
        _check_weights(weights, cin, cout, k)
        x = torch.randn(3, cin, h, w, generator=gen, dtype=torch.float64)
        expected = _separable_reference(x, weights.get("depthwise.weight"), weights.get("depthwise.bias"),
                                        weights.get("pointwise.weight"), weights.get("pointwise.bias"), s, k // 2)
        out = student.call(inspect, "run", block, x, False)
        check_close(out, expected, f"DepthwiseSeparableConv2d({cin}, {cout}, kernel_size={k}, stride={s}, bias={bias})(x)",
                    rtol=1e-7, atol=1e-9)


@judge("separable_conv_bn_relu")
def separable_conv_bn_relu(student, gen):
    inspect = _inspector(student)
    block = _block(student, 4, 6, k=3, bias=False, bn_relu=True)
    d = student.call(inspect, "describe", block)
    check_true(d["bn_depthwise"] is not None, "block.bn_depthwise should be an nn.BatchNorm2d")
    check_true(d["bn_pointwise"] is not None, "block.bn_pointwise should be an nn.BatchNorm2d")
    for cin, cout, k, s in [(4, 6, 3, 1), (6, 5, 5, 2)]:
        block = _block(student, cin, cout, k=k, stride=s, bias=False, bn_relu=True)
        weights = _randomize(student, inspect, block, gen)
        _check_weights(weights, cin, cout, k)
        for name in ("depthwise.weight", "pointwise.weight", "bn_depthwise.weight", "bn_depthwise.bias",
                     "bn_depthwise.running_mean", "bn_depthwise.running_var", "bn_pointwise.weight",
                     "bn_pointwise.bias", "bn_pointwise.running_mean", "bn_pointwise.running_var"):
            check_true(name in weights, f"with bn_relu=True and bias=False the block should have the parameter or buffer {name}")
        x = torch.randn(4, cin, 9, 8, generator=gen, dtype=torch.float64)
        expected = _block_by_hand(weights, x, s, k // 2, training=False)
        check_close(student.call(inspect, "run", block, x, False), expected,
                    f"bn_relu=True in evaluation mode (in_channels={cin}, out_channels={cout}, kernel_size={k}, stride={s})",
                    rtol=1e-6, atol=1e-8)
        expected = _block_by_hand(weights, x, s, k // 2, training=True)
        check_close(student.call(inspect, "run", block, x, True), expected,
                    f"bn_relu=True in training mode (in_channels={cin}, out_channels={cout}, kernel_size={k}, stride={s})",
                    rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------ counts


def _count_cases(gen):
    cases = [(3, 16, 3, True), (16, 3, 5, False), (7, 11, 1, True), (64, 128, 7, True), (5, 5, 3, False)]
    cases.append((_rand_int(gen, 1, 40), _rand_int(gen, 1, 40), 2 * _rand_int(gen, 0, 3) + 1, bool(_rand_int(gen, 0, 1))))
    return cases


def _count(student, name, *args, **kwargs):
    got = student.call(name, *args, **kwargs)
    check_true(isinstance(got, (int, float)) and not isinstance(got, bool), f"{name} should return a number, got {got!r}"[:200])
    return got


@judge("standard_conv_params_value")
def standard_conv_params_value(student, gen):
    check_true(_count(student, "standard_conv_params", 32, 64, 3) == 3 * 3 * 32 * 64 + 64,
               f"standard_conv_params(32, 64, 3) should be {3 * 3 * 32 * 64 + 64}")
    for cin, cout, k, bias in _count_cases(gen):
        want = sum(p.numel() for p in nn.Conv2d(cin, cout, k, bias=bias, device="meta").parameters())
        check_true(_count(student, "standard_conv_params", cin, cout, k, bias=bias) == want,
                   "standard_conv_params gives a wrong count for some layers")


@judge("separable_conv_params_value")
def separable_conv_params_value(student, gen):
    want = (3 * 3 * 32 + 32) + (32 * 64 + 64)
    check_true(_count(student, "separable_conv_params", 32, 64, 3) == want, f"separable_conv_params(32, 64, 3) should be {want}")
    for cin, cout, k, bias in _count_cases(gen):
        ref = [nn.Conv2d(cin, cin, k, groups=cin, bias=bias, device="meta"), nn.Conv2d(cin, cout, 1, bias=bias, device="meta")]
        want = sum(p.numel() for layer in ref for p in layer.parameters())
        check_true(_count(student, "separable_conv_params", cin, cout, k, bias=bias) == want,
                   "separable_conv_params gives a wrong count for some layers")


def _mac_cases(gen):
    cases = [(3, 16, 3, 12, 10, 1), (16, 8, 5, 11, 9, 2), (8, 12, 1, 7, 7, 1), (6, 10, 3, 15, 14, 2), (4, 4, 7, 9, 13, 3)]
    cases.append((_rand_int(gen, 1, 32), _rand_int(gen, 1, 32), 2 * _rand_int(gen, 0, 3) + 1,
                  _rand_int(gen, 7, 30), _rand_int(gen, 7, 30), _rand_int(gen, 1, 3)))
    return cases


def _pair(student, *args, **kwargs):
    r = student.conv_macs(*args, **kwargs)
    check_true(isinstance(r, (tuple, list)) and len(r) == 2,
               f"conv_macs should return a pair (standard_macs, separable_macs), got {r!r}"[:300])
    check_true(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r), "both MAC counts should be numbers")
    return r


@judge("standard_conv_macs_value")
def standard_conv_macs_value(student, gen):
    r = _pair(student, 32, 64, 3, 16, 16)
    check_true(abs(r[0] - 16 * 16 * 64 * (3 * 3 * 32)) < 0.5,
               f"standard MACs of conv_macs(32, 64, 3, 16, 16) should be {16 * 16 * 64 * 3 * 3 * 32}, got {r[0]}")
    for cin, cout, k, h, w, s in _mac_cases(gen):
        want = _conv_macs([nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, device="meta")],
                          torch.zeros(1, cin, h, w, device="meta"))
        check_true(abs(_pair(student, cin, cout, k, h, w, stride=s)[0] - want) < 0.5,
                   "the standard MAC count is wrong for some layers")


@judge("separable_conv_macs_value")
def separable_conv_macs_value(student, gen):
    r = _pair(student, 32, 64, 3, 16, 16)
    want = 16 * 16 * 32 * 3 * 3 + 16 * 16 * 64 * 32
    check_true(abs(r[1] - want) < 0.5, f"separable MACs of conv_macs(32, 64, 3, 16, 16) should be {want}, got {r[1]}")
    for cin, cout, k, h, w, s in _mac_cases(gen):
        ref = [nn.Conv2d(cin, cin, k, stride=s, padding=k // 2, groups=cin, device="meta"), nn.Conv2d(cin, cout, 1, device="meta")]
        want = _conv_macs(ref, torch.zeros(1, cin, h, w, device="meta"))
        check_true(abs(_pair(student, cin, cout, k, h, w, stride=s)[1] - want) < 0.5,
                   "the separable MAC count is wrong for some layers")
