"""Judges of hw3/compression.ipynb (pruning, quantization, low rank, size and MACs).

Nothing is trained: every judge builds small tensors, layers and networks itself (from ``gen``), passes them
to the student's function in the kernel and compares the answer with a reference computed here (torch.topk
for the masks, torch.fake_quantize_* for quantization, the SVD's singular values for low rank, forward hooks
and parameter counts on networks rebuilt here for MACs and sizes). Layers and networks the student's code
takes are built in the kernel by a small helper defined there in a namespace of its own (not the
notebook's); tensors passed with ``student.put`` are read back to check that the student's code leaves its
inputs unchanged.
"""
import math

import torch
from torch import nn

from eep590_utils.checks import check_close, check_shape, check_true
from eep590_utils.grading.judge import judge

# Runs in the student's kernel, in a namespace of its own.
_HELPER = '''
import torch
nn = torch.nn
LAYERS = {"conv": nn.Conv2d, "linear": nn.Linear, "relu": nn.ReLU, "flatten": nn.Flatten,
          "maxpool": nn.MaxPool2d, "avgpool": nn.AdaptiveAvgPool2d}

def helper(op, *args):
    if op == "build":            # an nn.Sequential from [(kind, args, kwargs)], with the given state dict
        spec, state = args
        net = nn.Sequential(*[LAYERS[kind](*a, **k) for kind, a, k in spec])
        net.load_state_dict(state)
        return net
    if op == "item":
        return args[0][args[1]]
    if op == "state":
        return {k: v.detach().clone() for k, v in args[0].state_dict().items()}
    if op == "forward":
        with torch.no_grad():
            return args[0](args[1])
    if op == "hooks":            # forward (pre-)hooks left on the modules of a network, and global ones
        m = args[0]
        mod = torch.nn.modules.module
        return {"modules": sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules()),
                "global": len(getattr(mod, "_global_forward_hooks", {})) + len(getattr(mod, "_global_forward_pre_hooks", {}))}
    if op == "describe":         # what svd_factorize_linear returned
        f = args[0]
        out = {"type": type(f).__name__, "is_sequential": isinstance(f, nn.Sequential), "layers": []}
        if isinstance(f, nn.Sequential):
            for layer in f:
                is_linear = isinstance(layer, nn.Linear)
                out["layers"].append({"is_linear": is_linear,
                                      "weight": layer.weight.detach().clone() if is_linear else None,
                                      "bias": None if not is_linear or layer.bias is None else layer.bias.detach().clone()})
        return out
    if op == "ste":              # values, whether differentiable, and the gradient of (out * upstream).sum()
        fn, x, upstream, rest, kwargs = args
        x = x.detach().clone().requires_grad_(True)
        out = fn(x, *rest, **kwargs)
        if not isinstance(out, torch.Tensor):
            return {"out": None, "requires_grad": False, "grad": None}
        differentiable = bool(out.requires_grad)
        if differentiable:
            (out * upstream).sum().backward()
        return {"out": out.detach(), "requires_grad": differentiable, "grad": x.grad}
    raise ValueError(op)
'''

_LAYERS = {"conv": nn.Conv2d, "linear": nn.Linear, "relu": nn.ReLU, "flatten": nn.Flatten,
           "maxpool": nn.MaxPool2d, "avgpool": nn.AdaptiveAvgPool2d}


def _helper(student):
    return student.eval(f"(lambda ns: (exec({_HELPER!r}, ns), ns['helper'])[1])({{}})")


def _build_here(spec, gen):
    """The network of ``spec`` built here, its weights drawn from gen (the same state goes to the kernel)."""
    net = nn.Sequential(*[_LAYERS[kind](*a, **k) for kind, a, k in spec])
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    return net


def _build_there(student, helper, net, spec):
    return student.call(helper, "build", spec, {k: v.detach().clone() for k, v in net.state_dict().items()})


def _rand_int(gen, lo, hi):
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def _uniform(gen, lo, hi):
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _mask(m, shape, what):
    check_true(isinstance(m, torch.Tensor), f"{what} should return a torch.Tensor, got {type(m).__name__}")
    check_shape(m, shape, what)
    check_true(m.dtype == torch.bool, f"{what}: the mask should have dtype torch.bool, got {m.dtype}")
    return m


def _unchanged(student, handle, before, what):
    after = student.value(handle)
    if isinstance(before, dict):
        check_true(isinstance(after, dict) and set(after) == set(before) and
                   all(torch.equal(after[k], before[k]) for k in before), f"{what} must not change the weights it is given")
    else:
        check_true(isinstance(after, torch.Tensor) and torch.equal(after, before), f"{what} must not change the weights it is given")


def _kept_reference(scores, k):
    """Bool (N,): False at the k smallest scores, True elsewhere."""
    kept = torch.ones(scores.numel(), dtype=torch.bool)
    if k > 0:
        kept[torch.topk(scores.reshape(-1), k, largest=False).indices] = False
    return kept


def _fractional_sparsity(gen, n, lo, hi):
    """A sparsity s with s * n = j + f, f in [lo, hi] (so round, floor and ceil tell apart), 0 <= s <= 1."""
    j = _rand_int(gen, 0, n - 1)
    return (j + _uniform(gen, lo, hi)) / n


# ======================================================================================= Part 1: pruning

W_EXAMPLE = torch.tensor([[0.5, -3.0, 1.0], [-0.1, 2.0, -1.5]])


@judge("magnitude_prune_mask_example")
def magnitude_prune_mask_example(student, gen):
    handle = student.put(W_EXAMPLE.clone())
    m = _mask(student.magnitude_prune_mask(handle, 0.5), (2, 3), "magnitude_prune_mask(w, 0.5)")
    check_true(not torch.equal(m, torch.tensor([[True, False, True], [False, True, False]])),
               "the mask keeps the weights of largest value; magnitude pruning keeps those of largest absolute value |w|")
    check_close(m.float(), torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), "magnitude_prune_mask(w, 0.5) (1 = kept)")
    _unchanged(student, handle, W_EXAMPLE, "magnitude_prune_mask")


@judge("magnitude_prune_mask_exact_sparsity")
def magnitude_prune_mask_exact_sparsity(student, gen):
    for shape in [(4, 5, 2, 2), (10, 20), (20,), (2, 10, 1, 1), (3, 7)]:
        w = torch.randn(shape, generator=gen)
        n = w.numel()
        sparsities = [0.0, 1.0, 0.5 if n % 2 == 0 else 0.25,
                      _fractional_sparsity(gen, n, 0.6, 0.9), _fractional_sparsity(gen, n, 0.1, 0.4)]
        for s in sparsities:
            k = round(s * n)
            m = _mask(student.magnitude_prune_mask(w, s), shape, f"magnitude_prune_mask for weights of shape {shape}")
            pruned = int((~m).sum())
            check_true(pruned == k, f"for {n} weights at sparsity {s:.4f} (sparsity x N = {s * n:.2f}), exactly "
                                    f"round(sparsity x N) = {k} should be pruned, not {pruned}")


@judge("magnitude_prune_mask_keeps_largest")
def magnitude_prune_mask_keeps_largest(student, gen):
    for shape, dtype in [((8, 4, 3, 3), torch.float32), ((50, 30), torch.float64), ((64,), torch.float32),
                         ((6, 6), torch.float64), ((5, 3, 2, 2), torch.float32)]:
        w = torch.randn(shape, generator=gen, dtype=dtype) * math.exp(_uniform(gen, -2, 2))
        n = w.numel()
        k = _rand_int(gen, 1, n - 1)
        while (k / n) * n != k:              # a whole sparsity x N (the exact-sparsity test has the fractional ones)
            k = _rand_int(gen, 1, n - 1)
        s = k / n
        handle = student.put(w.clone())
        m = _mask(student.magnitude_prune_mask(handle, s), shape, f"magnitude_prune_mask for weights of shape {shape}")
        _unchanged(student, handle, w, "magnitude_prune_mask")
        check_true(torch.equal(m.reshape(-1), _kept_reference(w.abs(), round(s * n))),
                   f"weights of shape {shape} ({dtype}), sparsity {s:.4f}: the kept entries should be the "
                   f"{n - round(s * n)} of largest |w|")


@judge("global_prune_masks_example")
def global_prune_masks_example(student, gen):
    weights = {"a": torch.tensor([0.1, -0.4, 0.5, 5.0]), "b": torch.tensor([[3.0, -2.5], [2.0, 6.0]])}
    m = student.global_prune_masks(weights, 0.5)
    check_true(isinstance(m, dict), f"global_prune_masks should return a dict, got {type(m).__name__}")
    check_true(set(m) == {"a", "b"}, f"the masks should have the keys 'a' and 'b', got {sorted(m)}")
    _mask(m["a"], (4,), "masks['a']")
    _mask(m["b"], (2, 2), "masks['b']")
    check_true(not (torch.equal(m["a"], torch.tensor([False, False, True, True]))
                    and torch.equal(m["b"], torch.tensor([[True, False], [False, True]]))),
               "each tensor was pruned to sparsity 0.5 on its own (per-layer pruning); global pruning uses one threshold for all")
    check_close(m["a"].float(), torch.tensor([0.0, 0.0, 0.0, 1.0]), "masks['a'] (1 = kept)")
    check_close(m["b"].float(), torch.tensor([[1.0, 1.0], [0.0, 1.0]]), "masks['b'] (1 = kept)")


@judge("global_prune_masks_matches_reference")
def global_prune_masks_matches_reference(student, gen):
    shapes = {"conv1.weight": (8, 1, 3, 3), "conv2.weight": (16, 8, 3, 3), "fc.weight": (10, 36)}
    scales = {"conv1.weight": 0.6, "conv2.weight": 0.1, "fc.weight": 1.0}
    weights = {name: scales[name] * math.exp(_uniform(gen, -0.3, 0.3)) * torch.randn(shape, generator=gen)
               for name, shape in shapes.items()}
    handle = student.put({k: v.clone() for k, v in weights.items()})
    flat = torch.cat([w.abs().reshape(-1) for w in weights.values()])
    n = flat.numel()
    for s in [0.25, 0.5, 0.75, _fractional_sparsity(gen, n, 0.6, 0.9)]:
        kept = _kept_reference(flat, round(s * n))
        m = student.global_prune_masks(handle, s)
        check_true(isinstance(m, dict) and set(m) == set(shapes), "global_prune_masks must return a dict with the keys of weights")
        start = 0
        for name, shape in shapes.items():
            size = weights[name].numel()
            _mask(m[name], shape, f"the mask of {name}")
            check_true(torch.equal(m[name].reshape(-1), kept[start:start + size]),
                       f"at sparsity {s:.4f}, the mask of {name} does not keep the weights of largest |w| over all "
                       "tensors together (exactly round(sparsity x N) pruned)")
            start += size
    _unchanged(student, handle, weights, "global_prune_masks")


@judge("channel_prune_mask_whole_filters")
def channel_prune_mask_whole_filters(student, gen):
    w = torch.randn(6, 3, 2, 2, generator=gen)
    m = _mask(student.channel_prune_mask(w, 0.5), (6, 3, 2, 2), "channel_prune_mask(w, 0.5)")
    per_channel = m.reshape(6, -1)
    check_true(bool((per_channel.all(dim=1) | ~per_channel.any(dim=1)).all()),
               "every mask[o] should be all True (channel kept) or all False (channel pruned)")
    pruned = int((~per_channel.any(dim=1)).sum())
    check_true(pruned == 3, f"3 of the 6 output channels should be pruned at sparsity 0.5, got {pruned}")


def _channel_cases(gen):
    hand = torch.zeros(4, 1, 3, 3)
    hand[0, 0, 1, 1] = 3.0     # L1 3, L2 3
    hand[1] = 0.5              # L1 4.5, L2 1.5
    hand[2] = 2.0              # L1 18, L2 6
    hand[3] = -2.0             # L1 18, L2 6, sum -18
    cases = [(hand, 0.25)]
    cases += [(torch.exp(torch.randn(16, 1, 1, 1, generator=gen)) * torch.randn(16, 4, 3, 3, generator=gen), s)
              for s in (0.25, 0.5, 0.75)]
    cases += [(torch.randn(12, 30, generator=gen) * torch.rand(12, 1, generator=gen), 0.5)]
    return cases


def _channel_judge(student, gen, p):
    for w, s in _channel_cases(gen):
        handle = student.put(w.clone())
        m = _mask(student.channel_prune_mask(handle, s, p=p), tuple(w.shape), f"channel_prune_mask(w, {s}, p={p})")
        _unchanged(student, handle, w, "channel_prune_mask")
        keep = m.reshape(w.shape[0], -1)
        check_true(bool((keep.all(1) | ~keep.any(1)).all()), "each output channel must be kept or pruned as a whole")
        norms = w.double().abs().pow(p).reshape(w.shape[0], -1).sum(1)
        check_true(torch.equal(keep.all(1), _kept_reference(norms, round(s * w.shape[0]))),
                   f"weights of shape {tuple(w.shape)}, sparsity {s}, p={p}: the wrong channels were pruned")


@judge("channel_prune_mask_l1")
def channel_prune_mask_l1(student, gen):
    _channel_judge(student, gen, 1)


@judge("channel_prune_mask_l2")
def channel_prune_mask_l2(student, gen):
    _channel_judge(student, gen, 2)


# ================================================================================== Part 2: quantization


def _qrange(k, sym):
    return (-(2 ** (k - 1) - 1), 2 ** (k - 1) - 1) if sym else (0, 2 ** k - 1)


@judge("qrange_8_bit")
def qrange_8_bit(student, gen):
    for sym, want in ((True, (-127, 127)), (False, (0, 255))):
        got = student.qrange(8, sym)
        check_true(isinstance(got, (tuple, list)) and tuple(got) == want,
                   f"qrange(8, symmetric={sym}) should be {want}, got {got!r}"[:200])


@judge("qrange_other_bits")
def qrange_other_bits(student, gen):
    for k in range(2, 17):
        for sym in (True, False):
            got = student.qrange(k, sym)
            check_true(isinstance(got, (tuple, list)) and len(got) == 2 and all(_is_int(v) for v in got),
                       "qrange must return two Python ints")
            check_true(tuple(got) == _qrange(k, sym), f"wrong range for {k} bits, symmetric={sym}")


def _scale_zp(student, x, k, sym, **kwargs):
    got = student.compute_scale_zero_point(x, k, sym, **kwargs)
    check_true(isinstance(got, (tuple, list)) and len(got) == 2, "compute_scale_zero_point should return (scale, zero_point)")
    s, z = got
    check_true(isinstance(s, torch.Tensor), f"scale should be a torch.Tensor, got {type(s).__name__}")
    check_true(isinstance(z, torch.Tensor), f"zero_point should be a torch.Tensor, got {type(z).__name__}")
    check_true(not z.is_floating_point(), f"zero_point should be an integer tensor (rounded), got dtype {z.dtype}")
    return s, z


@judge("scale_zero_point_symmetric_example")
def scale_zero_point_symmetric_example(student, gen):
    s, z = _scale_zp(student, torch.tensor([-1.27, 0.5, 0.635]), 8, True)
    check_shape(s, (), "scale of per-tensor quantization")
    check_close(s, 0.01, "scale")
    check_close(z, 0, "zero_point of symmetric quantization")


@judge("scale_zero_point_symmetric")
def scale_zero_point_symmetric(student, gen):
    for k in (2, 3, 4, 6, 8):
        for sign in (1.0, -1.0):
            x = torch.randn(5, 7, generator=gen).clamp(-3.0, 3.0)  # the planted peak is the largest magnitude
            peak = _uniform(gen, 3.5, 6.0)
            x[_rand_int(gen, 0, 4), _rand_int(gen, 0, 6)] = sign * peak
            s, z = _scale_zp(student, x, k, True)
            check_shape(s, (), "per-tensor scale")
            check_true(math.isclose(float(s), peak / (2 ** (k - 1) - 1), rel_tol=1e-5), f"wrong symmetric scale for {k} bits")
            check_true(int(z) == 0, "the zero point of symmetric quantization must be 0")


def _asym_reference(x, k):
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    s = (hi - lo) / (2 ** k - 1)
    return s, round(-lo / s)


@judge("scale_zero_point_asymmetric")
def scale_zero_point_asymmetric(student, gen):
    s, z = _scale_zp(student, torch.tensor([-1.013, 0.2, 4.09, 1.5]), 8, False)
    check_shape(s, (), "scale of per-tensor quantization")
    check_close(s, 5.103 / 255, "scale", rtol=1e-5)
    check_close(z, 51, "zero_point")
    for k in (2, 4, 8):
        for shift in (_uniform(gen, 0.3, 1.0), _uniform(gen, -1.0, -0.2), _uniform(gen, 4.0, 6.0)):
            x = torch.randn(6, 5, generator=gen) + shift
            s_ref, z_ref = _asym_reference(x, k)
            s, z = _scale_zp(student, x, k, False)
            check_shape(s, (), "per-tensor scale")
            check_true(math.isclose(float(s), s_ref, rel_tol=1e-5),
                       f"wrong asymmetric scale for {k} bits (the range must include 0)")
            check_true(int(z) == z_ref and 0 <= int(z) <= 2 ** k - 1, f"wrong asymmetric zero point for {k} bits")


@judge("scale_zero_point_per_channel")
def scale_zero_point_per_channel(student, gen):
    s, z = _scale_zp(student, torch.randn(6, 2, 3, 3, generator=gen), 8, True, per_channel=True, axis=0)
    check_shape(s, (6,), "per-channel scale of a (6, 2, 3, 3) weight along axis 0")
    check_shape(z, (6,), "per-channel zero_point of a (6, 2, 3, 3) weight along axis 0")
    for shape, axis in (((6, 4, 3, 3), 0), ((5, 7), 1), ((8, 20), 0)):
        view = [-1 if d == axis else 1 for d in range(len(shape))]
        x = torch.randn(shape, generator=gen) * torch.exp(torch.randn(shape[axis], generator=gen)).reshape(view) + 0.3
        for sym in (True, False):
            k = 4 if sym else 8
            s, z = _scale_zp(student, x, k, sym, per_channel=True, axis=axis)
            check_shape(s, (shape[axis],), f"per-channel scale for shape {shape}, axis {axis}")
            check_shape(z, (shape[axis],), f"per-channel zero point for shape {shape}, axis {axis}")
            for c in range(shape[axis]):
                xc = x.select(axis, c)
                if sym:
                    s_ref, z_ref = float(xc.abs().max()) / (2 ** (k - 1) - 1), 0
                else:
                    s_ref, z_ref = _asym_reference(xc, k)
                check_true(math.isclose(float(s[c]), s_ref, rel_tol=1e-5),
                           f"shape {shape}, axis {axis}, symmetric={sym}: wrong scale for channel {c}")
                check_true(int(z[c]) == z_ref, f"shape {shape}, axis {axis}, symmetric={sym}: wrong zero point for channel {c}")


@judge("quantize_dequantize_error_bound")
def quantize_dequantize_error_bound(student, gen):
    x = torch.randn(4, 25, generator=gen)
    for k, sym in ((8, True), (8, False), (4, True), (4, False)):
        lo, hi = _qrange(k, sym)
        s, z = _scale_zp(student, x, k, sym)
        q = student.quantize(x, s, z, k, sym)
        check_true(isinstance(q, torch.Tensor), f"quantize(x, ..., {k} bits, symmetric={sym}) should return a torch.Tensor")
        check_shape(q, x.shape, f"quantize(x, ..., {k} bits, symmetric={sym})")
        check_true(q.dtype == torch.int32, f"quantize should return torch.int32 integers, got {q.dtype}")
        check_true(int(q.min()) >= lo and int(q.max()) <= hi,
                   f"{k}-bit symmetric={sym}: integers should lie in [{lo}, {hi}], got [{int(q.min())}, {int(q.max())}]")
        back = student.dequantize(q, s, z)
        check_true(isinstance(back, torch.Tensor), "dequantize(q, scale, zero_point) should return a torch.Tensor")
        check_true(back.is_floating_point(), f"dequantize should return a float tensor, got {back.dtype}")
        check_close(back, x, f"dequantize(quantize(x)) for {k} bits, symmetric={sym}", rtol=0, atol=float(s) / 2 + 1e-6)


def _quantize_checks(student, x, scale, zp, k, sym, axis, what):
    qmin, qmax = _qrange(k, sym)
    view = [-1 if d == axis else 1 for d in range(x.ndim)] if scale.ndim else []
    s_v, z_v = (scale.reshape(view), zp.reshape(view)) if scale.ndim else (scale, zp)
    q_ref = torch.clamp(torch.round(x / s_v) + z_v, qmin, qmax)
    if scale.ndim:
        fake = torch.fake_quantize_per_channel_affine(x, scale, zp.to(torch.int32), axis, qmin, qmax)
    else:
        fake = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), qmin, qmax)
    q = student.quantize(x, scale, zp, k, sym, axis=axis)
    check_true(isinstance(q, torch.Tensor) and q.shape == x.shape, "quantize must return a tensor of the shape of x")
    check_true(not q.is_floating_point(), "quantize must return integers")
    check_true(torch.equal(q.long(), q_ref.long()), f"{what}: quantize gives wrong integers")
    back = student.dequantize(q, scale, zp, axis=axis)
    check_true(isinstance(back, torch.Tensor) and back.shape == x.shape, "dequantize must return a tensor of the shape of q")
    check_close(back.float(), fake, f"{what}: dequantize(quantize(x)) compared with the reference fake quantization",
                rtol=0, atol=1e-5)


@judge("quantize_matches_torch_per_tensor")
def quantize_matches_torch_per_tensor(student, gen):
    for k in (2, 3, 4, 8):
        for sym in (True, False):
            qmin, qmax = _qrange(k, sym)
            x = torch.randn(3, 40, generator=gen) * 2
            scale = torch.tensor(_uniform(gen, 0.5, 0.9) * 2 * 2 / (qmax - qmin))   # narrower than x: clamping happens
            zp = torch.tensor(0 if sym else _rand_int(gen, (qmax + 1) // 4, 3 * (qmax + 1) // 4), dtype=torch.int64)
            _quantize_checks(student, x, scale, zp, k, sym, 0, f"{k} bits, symmetric={sym}")


@judge("quantize_matches_torch_per_channel")
def quantize_matches_torch_per_channel(student, gen):
    for shape, axis in (((6, 3, 3, 3), 0), ((5, 8), 1), ((4, 6, 2), 1)):
        for k, sym in ((4, True), (8, False), (3, False)):
            qmin, qmax = _qrange(k, sym)
            C = shape[axis]
            x = torch.randn(shape, generator=gen)
            scale = (0.5 + torch.rand(C, generator=gen)) * 3 / (qmax - qmin)
            zp = torch.zeros(C, dtype=torch.int64) if sym else torch.randint(0, qmax + 1, (C,), generator=gen)
            _quantize_checks(student, x, scale, zp, k, sym, axis, f"shape {shape}, axis {axis}, {k} bits, symmetric={sym}")


@judge("fake_quantize_ste_forward")
def fake_quantize_ste_forward(student, gen):
    x = torch.linspace(-0.8, 1.2, 21)
    out = student.fake_quantize_ste(x, torch.tensor(0.1), torch.tensor(5), 4, False)
    check_true(isinstance(out, torch.Tensor), "fake_quantize_ste(x, ...) should return a torch.Tensor")
    check_shape(out, x.shape, "fake_quantize_ste(x, ...)")
    check_close(out, torch.fake_quantize_per_tensor_affine(x, 0.1, 5, 0, 15), "fake_quantize_ste(x, ...)", atol=1e-5)
    scale = torch.tensor(_uniform(gen, 0.05, 0.2))
    x = torch.randn(5, 8, generator=gen)
    out = student.fake_quantize_ste(x, scale, torch.tensor(0), 8, True)
    check_close(out, torch.fake_quantize_per_tensor_affine(x, float(scale), 0, -127, 127),
                "fake_quantize_ste(x, ...) with 8-bit symmetric quantization", atol=1e-5)


@judge("fake_quantize_ste_gradient")
def fake_quantize_ste_gradient(student, gen):
    helper = _helper(student)
    fn = student.value("fake_quantize_ste")
    for k, sym, per_channel in ((4, True, False), (8, False, False), (3, True, True), (4, False, True)):
        qmin, qmax = _qrange(k, sym)
        x = torch.randn(6, 10, generator=gen) * 1.5
        if per_channel:
            scale = (0.5 + torch.rand(6, generator=gen)) * 4 / (qmax - qmin)
            zp = torch.zeros(6, dtype=torch.int64) if sym else torch.full((6,), (qmax + 1) // 2, dtype=torch.int64)
            s_v, z_v = scale.reshape(6, 1), zp.reshape(6, 1)
        else:
            scale = torch.tensor(4.0 / (qmax - qmin))
            zp = torch.tensor(0 if sym else (qmax + 1) // 2)
            s_v, z_v = scale, zp
        upstream = torch.randn(6, 10, generator=gen)
        what = f"{k} bits, symmetric={sym}, per_channel={per_channel}"
        got = student.call(helper, "ste", fn, x, upstream, [scale, zp, k, sym], {"axis": 0})
        check_true(isinstance(got["out"], torch.Tensor) and got["out"].shape == x.shape,
                   "fake_quantize_ste must return a tensor of the shape of x")
        check_true(got["requires_grad"], "the output of fake_quantize_ste must be differentiable with respect to x (no gradient path)")
        check_true(got["grad"] is not None, "no gradient reached x")
        inside = (x > s_v * (qmin - z_v) + 1e-4) & (x < s_v * (qmax - z_v) - 1e-4)
        assert inside.sum() > 30, "test set-up: too few values inside the range"
        check_true(torch.allclose(got["grad"][inside], upstream[inside], rtol=1e-6, atol=1e-6),
                   f"{what}: inside the clipping range the gradient should pass straight through (be the incoming gradient)")


# ==================================================================================== Part 3: low rank


def _linear_there(student, helper, layer):
    spec = [("linear", [layer.in_features, layer.out_features], {"bias": layer.bias is not None})]
    net = student.call(helper, "build", spec, {"0." + k: v.detach().clone() for k, v in layer.state_dict().items()})
    return student.call(helper, "item", net, 0)


def _factorized(student, helper, layer_remote, rank, n_in, n_out):
    f = student.svd_factorize_linear(layer_remote, rank)
    d = student.call(helper, "describe", f)
    check_true(d["is_sequential"], f"svd_factorize_linear should return an nn.Sequential, got {d['type']}")
    check_true(len(d["layers"]) == 2 and all(layer["is_linear"] for layer in d["layers"]),
               "svd_factorize_linear should return nn.Sequential(first, second) of two nn.Linear layers")
    first, second = d["layers"]
    check_shape(first["weight"], (rank, n_in), f"first.weight of Linear({n_in}, {n_out}) at rank {rank}")
    check_shape(second["weight"], (n_out, rank), f"second.weight of Linear({n_in}, {n_out}) at rank {rank}")
    return f, first, second


def _linear_here(gen, n_in, n_out, bias=True):
    layer = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        bound = 1 / math.sqrt(n_in)
        layer.weight.copy_((2 * torch.rand(n_out, n_in, generator=gen) - 1) * bound)
        if bias:
            layer.bias.copy_((2 * torch.rand(n_out, generator=gen) - 1) * bound)
    return layer


@judge("svd_factorize_linear_structure")
def svd_factorize_linear_structure(student, gen):
    helper = _helper(student)
    layer = _linear_here(gen, 12, 8)
    f, first, second = _factorized(student, helper, _linear_there(student, helper, layer), 3, 12, 8)
    check_true(first["bias"] is None, "the first layer should have no bias")
    check_true(second["bias"] is not None, "the second layer should carry the bias of the original layer")
    check_close(second["bias"], layer.bias.detach(), "second.bias")
    check_shape(student.call(helper, "forward", f, torch.randn(5, 12, generator=gen)), (5, 8),
                "the output of the factorized layer for 5 inputs")


@judge("svd_factorize_linear_full_rank_exact")
def svd_factorize_linear_full_rank_exact(student, gen):
    helper = _helper(student)
    for n_in, n_out, bias in ((12, 8, True), (6, 15, True), (10, 10, False), (30, 4, True)):
        layer = _linear_here(gen, n_in, n_out, bias)
        remote = _linear_there(student, helper, layer)
        f, first, second = _factorized(student, helper, remote, min(n_in, n_out), n_in, n_out)
        after = student.call(helper, "state", remote)
        check_true(torch.equal(after["weight"], layer.weight.detach()), "svd_factorize_linear must not change the original layer")
        check_close(second["weight"].double() @ first["weight"].double(), layer.weight.detach().double(),
                    f"second.weight @ first.weight of Linear({n_in}, {n_out}) at full rank (should equal W)",
                    rtol=1e-4, atol=1e-5)
        x = torch.randn(7, n_in, generator=gen)
        with torch.no_grad():
            expected = layer(x)
        check_close(student.call(helper, "forward", f, x), expected,
                    f"the outputs of Linear({n_in}, {n_out}, bias={bias}) factorized at full rank", rtol=1e-4, atol=1e-5)


@judge("svd_factorize_linear_eckart_young")
def svd_factorize_linear_eckart_young(student, gen):
    helper = _helper(student)
    for n_in, n_out, r in ((20, 12, 1), (20, 12, 5), (9, 16, 4), (32, 32, 10)):
        layer = _linear_here(gen, n_in, n_out)
        W = layer.weight.detach().double()
        _, first, second = _factorized(student, helper, _linear_there(student, helper, layer), r, n_in, n_out)
        err = float((second["weight"].double() @ first["weight"].double() - W).pow(2).sum())
        want = float(torch.linalg.svdvals(W)[r:].pow(2).sum())
        check_true(math.isclose(err, want, rel_tol=1e-3, abs_tol=1e-6),
                   f"Linear({n_in}, {n_out}) at rank {r}: the approximation error is not the smallest possible "
                   "(it should be the sum of the squared discarded singular values)")


@judge("rank_for_energy_example")
def rank_for_energy_example(student, gen):
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])
    for e, r in ((0.5, 1), (0.9, 2), (1.0, 4)):
        got = student.rank_for_energy(s, e)
        check_true(_is_int(got), f"rank_for_energy should return a Python int, got {type(got).__name__}")
        check_true(not (e == 0.9 and got == 4),
                   "rank_for_energy(s, 0.9) gave 4: the energy is the fraction of the SQUARED singular values")
        check_true(got == r, f"rank_for_energy((4, 2, 1, 1), {e}) should be {r}, got {got}")


@judge("rank_for_energy_matches_reference")
def rank_for_energy_matches_reference(student, gen):
    for m, n, dtype in ((40, 30, torch.float64), (64, 16, torch.float32), (25, 25, torch.float64)):
        decay = _uniform(gen, 0.1, 0.3)
        A = torch.randn(m, n, generator=gen, dtype=torch.float64) @ torch.diag(torch.exp(-decay * torch.arange(n, dtype=torch.float64)))
        sv = torch.linalg.svdvals(A).to(dtype)
        frac = (sv.double() ** 2).cumsum(0) / (sv.double() ** 2).sum()
        for e in (0.5, 0.8, 0.9, 0.95, 0.99, _uniform(gen, 0.5, 0.99)):
            want = next(i + 1 for i in range(len(sv)) if frac[i] >= e)
            got = student.rank_for_energy(sv, e)
            check_true(_is_int(got) and got == want, f"{len(sv)} singular values ({dtype}), energy {e:.4f}: wrong rank")


# ========================================================================== Part 4: size and MACs


def _size_reference(net, weight_bits=32, sparse=False):
    bits, counted = 0, set()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bits += (int((m.weight != 0).sum()) if sparse else m.weight.numel()) * weight_bits
            counted.add(id(m.weight))
    bits += sum(p.numel() * 32 for p in net.parameters() if id(p) not in counted)
    return math.ceil(bits / 8)


def _size(student, remote, **kwargs):
    got = student.model_size_bytes(remote, **kwargs)
    check_true(_is_int(got), f"model_size_bytes should return a Python int, got {type(got).__name__}")
    return got


@judge("model_size_bytes_float32")
def model_size_bytes_float32(student, gen):
    helper = _helper(student)
    spec = [("conv", [3, 4, 3], {}), ("relu", [], {}), ("flatten", [], {}), ("linear", [16, 5], {})]
    net = _build_here(spec, gen)
    got = _size(student, _build_there(student, helper, net, spec))
    check_true(got == 4 * (108 + 4 + 80 + 5), f"model_size_bytes(model) should be {4 * 197} bytes, got {got}")


@judge("model_size_bytes_bits_and_sparsity")
def model_size_bytes_bits_and_sparsity(student, gen):
    helper = _helper(student)
    c1, h1 = _rand_int(gen, 3, 6), _rand_int(gen, 5, 9)
    spec = [("conv", [2, c1, 3], {}), ("relu", [], {}), ("flatten", [], {}), ("linear", [c1 * 9, h1], {}),
            ("relu", [], {}), ("linear", [h1, 3], {})]
    net = _build_here(spec, gen)
    remote = _build_there(student, helper, net, spec)
    for bits in (8, 4, 3, _rand_int(gen, 2, 7)):
        check_true(_size(student, remote, weight_bits=bits) == _size_reference(net, bits),
                   f"wrong size with {bits}-bit weights (biases stay 32-bit, bytes rounded up)")
    with torch.no_grad():
        net[0].weight[:2] = 0.0
        net[3].weight[:, :_rand_int(gen, 3, 12)] = 0.0
        net[0].bias[0] = 0.0                 # a zero bias is still stored
    remote = _build_there(student, helper, net, spec)
    for bits in (32, 4, _rand_int(gen, 2, 7)):
        check_true(_size(student, remote, weight_bits=bits, sparse=True) == _size_reference(net, bits, sparse=True),
                   f"wrong sparse size at {bits} bits (only non-zero weights are stored; every bias is)")
    check_true(_size(student, remote, weight_bits=32) == _size_reference(net, 32), "sparse=False must count the zero weights too")


def _macs_reference(net, input_shape, count_zeros=True):
    total = [0]

    def hook(module, inputs, output):
        used = module.weight.numel() if count_zeros else int((module.weight != 0).sum())
        positions = output.shape[-2] * output.shape[-1] if isinstance(module, nn.Conv2d) else output.numel() // output.shape[-1]
        total[0] += positions * used

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _macs(student, remote, input_shape, **kwargs):
    got = student.count_macs(remote, list(input_shape), **kwargs)
    check_true(_is_int(got), f"count_macs should return a Python int, got {type(got).__name__}")
    return got


@judge("count_macs_linear")
def count_macs_linear(student, gen):
    helper = _helper(student)
    spec = [("linear", [20, 10], {}), ("relu", [], {}), ("linear", [10, 3], {})]
    got = _macs(student, _build_there(student, helper, _build_here(spec, gen), spec), (20,))
    check_true(got == 230, f"count_macs(MLP) should be 230, got {got}")
    n0, n1, n2 = _rand_int(gen, 5, 40), _rand_int(gen, 5, 40), _rand_int(gen, 2, 10)
    spec = [("linear", [n0, n1], {}), ("relu", [], {}), ("linear", [n1, n2], {})]
    got = _macs(student, _build_there(student, helper, _build_here(spec, gen), spec), (n0,))
    check_true(got == n0 * n1 + n1 * n2, f"count_macs of Linear({n0}, {n1}) then Linear({n1}, {n2}) should be "
                                         f"{n0 * n1 + n1 * n2}, got {got}")


@judge("count_macs_conv")
def count_macs_conv(student, gen):
    helper = _helper(student)
    spec = [("conv", [3, 8, 3], {"padding": 1})]
    got = _macs(student, _build_there(student, helper, _build_here(spec, gen), spec), (3, 10, 10))
    check_true(got == 21600, f"count_macs(Conv2d(3, 8, 3, padding=1)) for input_shape (3, 10, 10) (a 10 x 10 x 3 input) "
                             f"should be 21600, got {got}")
    spec_a = [("conv", [3, 6, 5], {"stride": 2, "padding": 1}), ("relu", [], {}), ("conv", [6, 6, 3], {"groups": 6}),
              ("conv", [6, 12, 1], {}), ("avgpool", [2], {}), ("flatten", [], {}), ("linear", [48, 5], {})]
    spec_b = [("conv", [4, 8, (3, 1)], {"padding": (1, 0), "groups": 2}), ("maxpool", [2], {}), ("conv", [8, 2, (1, 3)], {})]
    shape_a = (3, _rand_int(gen, 14, 24), _rand_int(gen, 14, 24))
    shape_b = (4, _rand_int(gen, 4, 10), _rand_int(gen, 7, 12))
    net_a = _build_here(spec_a, gen)
    remote_a = _build_there(student, helper, net_a, spec_a)
    want_a = _macs_reference(net_a, shape_a)
    check_true(_macs(student, remote_a, shape_a) == want_a,
               "wrong MAC count for a network with strided, depthwise and 1x1 convolutions")
    net_b = _build_here(spec_b, gen)
    check_true(_macs(student, _build_there(student, helper, net_b, spec_b), shape_b) == _macs_reference(net_b, shape_b),
               "wrong MAC count for grouped convolutions with non-square kernels")
    before = student.call(helper, "hooks", remote_a)
    check_true(_macs(student, remote_a, shape_a) == want_a,
               "count_macs must give the same count when called twice (remove the hooks)")
    after = student.call(helper, "hooks", remote_a)
    check_true(after["modules"] == 0 and after["global"] <= before["global"] and before["modules"] == 0,
               "count_macs must remove every hook it registers before it returns (the modules keep hooks after the call)")


@judge("count_macs_sparse")
def count_macs_sparse(student, gen):
    helper = _helper(student)
    size = _rand_int(gen, 4, 7)
    spec = [("conv", [2, 4, 3], {"padding": 1}), ("relu", [], {}), ("flatten", [], {}), ("linear", [4 * size * size, 6], {})]
    net = _build_here(spec, gen)
    with torch.no_grad():
        net[0].weight[1] = 0.0
        net[0].weight[3, 0, 0, 0] = 0.0
        net[3].weight[:, :_rand_int(gen, 10, 4 * size * size - 1)] = 0.0
    remote = _build_there(student, helper, net, spec)
    shape = (2, size, size)
    check_true(_macs(student, remote, shape) == _macs_reference(net, shape), "with count_zeros=True every weight counts")
    check_true(_macs(student, remote, shape, count_zeros=False) == _macs_reference(net, shape, count_zeros=False),
               "with count_zeros=False the zero weights must not count")
