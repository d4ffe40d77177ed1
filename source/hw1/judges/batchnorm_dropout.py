"""Judges of hw1/batchnorm_dropout.ipynb: batch normalization, inverted dropout and spatial batch
normalization (NumPy), forward and backward.

References are computed here: ``torch.nn.functional.batch_norm`` (biased variance for normalizing) and its
autograd, the definition of inverted dropout, and numerical gradients of the student's own forward passes
(all the evaluations of one numerical gradient in one probe: judge.numerical_gradient). Inputs are drawn from ``gen``.
Tolerances accept every correct implementation and reject the usual mistakes: the unbiased variance
(normalizing or in the running average), statistics over the wrong axis, spatial batchnorm without moving
the channels last, dropout without the 1 / (1 - p) scale or with p read as the keep probability. The test-mode
tests give the running averages themselves, so a wrong train-mode update (momentum and 1 - momentum swapped) is
reported by the running-average test, naming the entry, not as a test-mode failure. Question 6: a minibatch of
one example, and the parameter counts of a fully connected layer followed by batch normalization.
"""
import numpy as np
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_true
from eep590_utils.grading.judge import Fail, Remote, judge, numerical_gradient


# ---------------------------------------------------------------------------------------------- helpers
def _normal(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).numpy()


def _uniform(gen, low, high, *shape):
    return (low + (high - low) * torch.rand(*shape, generator=gen, dtype=torch.float64)).numpy()


def _seed(gen):
    return int(torch.randint(0, 2**31 - 1, (1,), generator=gen))


def _kind(value):
    return value.type_name if isinstance(value, Remote) else type(value).__name__


def _array(value, name, shape=None):
    """``value`` as a NumPy array (of ``shape`` when given), or a failure saying what came back."""
    if value is None:
        raise Fail(f"{name} is None: did you forget to return (or assign) the result?")
    if not isinstance(value, np.ndarray):
        raise Fail(f"{name} should be a numpy array, but it is a {_kind(value)}")
    if shape is not None:
        check_shape(value, shape, name)
    return value


def _tuple(result, length, call, names):
    """The student's result as a tuple of ``length`` items, or a failure saying what came back."""
    if result is None:
        raise Fail(f"{call} returned None: did you forget to return {names}?")
    if not isinstance(result, (tuple, list)) or len(result) != length:
        raise Fail(f"{call} should return a tuple {names}, but it returned a {_kind(result)}"
                   + (f" of {len(result)} items" if isinstance(result, (tuple, list)) else ""))
    return tuple(result)


def _forward(student, fn, x, gamma, beta, bn_param):
    """Run the student's ``fn`` (batchnorm_forward or spatial_batchnorm_forward) with ``bn_param`` kept in
    the kernel; ``(out, cache, bn_param as updated by the student)``."""
    handle = student.put(dict(bn_param))
    out, cache = _tuple(student.call(fn, x, gamma, beta, handle), 2, f"{fn}(x, gamma, beta, bn_param)", "(out, cache)")
    updated = student.value(handle)
    return out, cache, updated


def _running(bn_param, key, shape, when):
    value = bn_param.get(key) if isinstance(bn_param, dict) else None
    if value is None:
        raise Fail(f'bn_param["{key}"] is missing {when}: store the running averages back in bn_param')
    if isinstance(value, torch.Tensor):
        value = value.detach().double().numpy()
    return _array(value, f'bn_param["{key}"] {when}', shape)


def _torch_batchnorm(x, running_mean, running_var, gamma, beta, training, eps, momentum=0.9):
    """Reference out and running averages (PyTorch's momentum is our 1 - momentum); PyTorch keeps the
    unbiased variance in its running average, this notebook (like cs231n) the biased one."""
    rm, rv = torch.from_numpy(running_mean.copy()), torch.from_numpy(running_var.copy())
    out = F.batch_norm(torch.from_numpy(x), rm, rv, torch.from_numpy(gamma), torch.from_numpy(beta),
                       training=training, eps=eps).numpy()
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    if training:
        new_m = momentum * running_mean + (1 - momentum) * x.mean(axis=axes)
        new_v = momentum * running_var + (1 - momentum) * x.var(axis=axes)
    else:
        new_m, new_v = running_mean, running_var
    return out, new_m, new_v


def _check_gradient(analytic, numeric, name, max_error):
    """Relative error per entry, |a - n| / (|a| + |n|), except that entries far smaller than the largest one
    are measured against a thousandth of it (centred differences leave ~1e-10 of noise; an entry that is
    ~1e-4 by chance must not fail a correct gradient)."""
    analytic = _array(analytic, name, np.shape(numeric))
    floor = 1e-3 * np.max(np.abs(numeric), initial=0.0) + 1e-8
    error = np.max(np.abs(analytic - numeric) / np.maximum(floor, np.abs(analytic) + np.abs(numeric)), initial=0.0)
    if not error <= max_error:  # also catches NaN
        check_close(analytic, numeric, name, max_rel_error=max_error)  # names the worst entry
        raise Fail(f"{name}: relative error {error:.2e} is above {max_error:.0e}")


def _numerical_gradient(f_many, x, dout, name):
    """The numerical gradient of sum(f(x) * dout), every evaluation in one probe; outputs checked as ``name``."""
    return numerical_gradient(f_many, x, dout, output=lambda out: _array(out, name, dout.shape))


def _backward_against_numerical(student, forward, backward, x, gamma, beta, dout):
    call = f"{forward}(x, gamma, beta, bn_param)"

    def outs_of(xs, gs, bs):  # every (x, gamma, beta) in one probe; the outputs only
        return student.call_many(forward, [(xx, gg, bb, {"mode": "train"}) for xx, gg, bb in zip(xs, gs, bs)], pick=0)

    _, cache = _tuple(student.call(forward, x, gamma, beta, {"mode": "train"}), 2, call, "(out, cache)")
    grads = _tuple(student.call(backward, dout, cache), 3, f"{backward}(dout, cache)", "(dx, dgamma, dbeta)")
    for name, got, like in zip(("dx", "dgamma", "dbeta"), grads, (x, gamma, beta)):
        _array(got, name, like.shape)  # before the numerical gradients, which take many calls
    dx_num = _numerical_gradient(lambda xs: outs_of(xs, [gamma] * len(xs), [beta] * len(xs)), x, dout, f"{call}[0]")
    dgamma_num = _numerical_gradient(lambda gs: outs_of([x] * len(gs), gs, [beta] * len(gs)), gamma, dout, f"{call}[0]")
    dbeta_num = _numerical_gradient(lambda bs: outs_of([x] * len(bs), [gamma] * len(bs), bs), beta, dout, f"{call}[0]")
    for name, got, want in zip(("dx", "dgamma", "dbeta"), grads, (dx_num, dgamma_num, dbeta_num)):
        _check_gradient(got, want, name, 1e-6)


def _backward_against_autograd(student, forward, backward, x, gamma, beta, dout, what):
    call = f"{forward}(x, gamma, beta, bn_param)"
    _, cache = _tuple(student.call(forward, x, gamma, beta, {"mode": "train"}), 2, call, "(out, cache)")
    grads = _tuple(student.call(backward, dout, cache), 3, f"{backward}(dout, cache)", "(dx, dgamma, dbeta)")
    xt, gt, bt = (torch.tensor(v, requires_grad=True) for v in (x, gamma, beta))
    F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(torch.from_numpy(dout))
    for name, got, want in zip(("dx", "dgamma", "dbeta"), grads, (xt.grad, gt.grad, bt.grad)):
        want = want.numpy()
        got = _array(got, name, want.shape)
        check_true(np.allclose(got, want, rtol=1e-4, atol=1e-6),
                   f"{name} is wrong for {what} (largest error {np.max(np.abs(got - want)):.3g})")


# ---------------------------------------------------------------------------------------------- batchnorm forward
@judge("batchnorm_forward_train_stats")
def batchnorm_forward_train_stats(student, gen):
    N, D = 200, 3
    a = _normal(gen, N, D) * _uniform(gen, 1.0, 5.0, D) + 10 * _normal(gen, D)
    gamma, beta = _uniform(gen, 0.5, 3.0, D), 10 * _normal(gen, D)
    out, _, bn_param = _forward(student, "batchnorm_forward", a, gamma, beta, {"mode": "train"})
    out = _array(out, "out", (N, D))
    check_close(out.mean(axis=0), beta, "per-feature mean of out", rtol=1e-6, atol=1e-6)
    check_true(not np.allclose(out.std(axis=0), gamma * np.sqrt((N - 1) / N), rtol=1e-5),
               "the per-feature stds are gamma * sqrt((N - 1) / N): normalize with the biased variance (divide by N)")
    check_close(out.std(axis=0), gamma, "per-feature std of out", rtol=1e-4, atol=1e-6)
    _running(bn_param, "running_mean", (D,), "after a train-mode pass")
    _running(bn_param, "running_var", (D,), "after a train-mode pass")


def _check_test_mode(student, fn, x, gamma, beta, running_mean, running_var, bn_param, name):
    """Test mode normalizes with the given running averages (torch's batch_norm with training=False), not with
    the minibatch's mean and variance, and leaves the running averages as they were."""
    out, _, after = _forward(student, fn, x, gamma, beta, bn_param)
    out = _array(out, "test-mode out", x.shape)
    expected, _, _ = _torch_batchnorm(x, running_mean, running_var, gamma, beta, training=False, eps=1e-5)
    minibatch, _, _ = _torch_batchnorm(x, running_mean, running_var, gamma, beta, training=True, eps=1e-5)
    per_channel = " of each channel" if x.ndim == 4 else ""
    check_true(not np.allclose(out, minibatch),
               f"test-mode out is normalized with the minibatch mean and variance{per_channel}: in test mode use "
               'bn_param["running_mean"] and bn_param["running_var"]')
    check_close(out, expected, name)
    for key, given in (("running_mean", running_mean), ("running_var", running_var)):
        check_close(_running(after, key, given.shape, "after a test-mode pass"), given,
                    f'bn_param["{key}"] after a test-mode pass')


@judge("batchnorm_forward_test_mode")
def batchnorm_forward_test_mode(student, gen):
    # the running averages are given, so a mistake in the train-mode update cannot fail this test
    for N, D in [(200, 3), (7, 5)]:
        x = _normal(gen, N, D) * _uniform(gen, 0.5, 4.0, D) + 3 * _normal(gen, D)
        gamma, beta = _uniform(gen, 0.5, 2.0, D), _normal(gen, D)
        running_mean, running_var = 3 * _normal(gen, D), _uniform(gen, 0.3, 12.0, D)
        _check_test_mode(student, "batchnorm_forward", x, gamma, beta, running_mean, running_var,
                         {"mode": "test", "momentum": 0.9, "running_mean": running_mean, "running_var": running_var},
                         "test-mode out")


@judge("batchnorm_forward_matches_torch")
def batchnorm_forward_matches_torch(student, gen):
    for N, D, eps in [(16, 7, 1e-5), (5, 3, 1e-5), (64, 12, 0.05)]:
        x = _normal(gen, N, D) * _uniform(gen, 0.2, 1.0, D) + 3 * _normal(gen, D)
        gamma, beta = _normal(gen, D), _normal(gen, D)
        rm, rv = _normal(gen, D), _uniform(gen, 0.5, 2.0, D)
        for mode in ("train", "test"):
            out, _, _ = _forward(student, "batchnorm_forward", x, gamma, beta,
                                 {"mode": mode, "eps": eps, "running_mean": rm, "running_var": rv})
            ref, _, _ = _torch_batchnorm(x, rm, rv, gamma, beta, mode == "train", eps)
            out = _array(out, f"{mode}-mode out", ref.shape)
            check_true(np.allclose(out, ref, rtol=1e-4, atol=1e-5),
                       f"{mode} mode, N={N}, D={D}, eps={eps}: out is wrong (largest error {np.max(np.abs(out - ref)):.3g})")


def _check_running_average(got, key, expected, swapped, unbiased, when):
    """Fail unless the student's bn_param[key] is ``expected``, naming the entry and both values, and saying so
    when it is the update with momentum and 1 - momentum swapped or with the unbiased variance."""
    name = f'bn_param["{key}"] {when}'
    try:
        check_close(got, expected, name, rtol=1e-6, atol=1e-8)
    except AssertionError as error:
        hint = ""
        if np.allclose(got, swapped, rtol=1e-6, atol=1e-8):
            hint = ("; it is (1 - momentum) * running + momentum * statistic: momentum and 1 - momentum are "
                    "swapped (momentum is the weight of the old running average)")
        elif unbiased is not None and np.allclose(got, unbiased, rtol=1e-6, atol=1e-8):
            hint = "; it uses the unbiased variance (divide by N - 1): keep the biased one (divide by N)"
        raise Fail(f"the running-average update is wrong: {error}{hint}") from None


@judge("batchnorm_running_averages")
def batchnorm_running_averages(student, gen):
    N, D = 10, 6
    for momentum in (0.7, None):
        m = 0.9 if momentum is None else momentum
        rm, rv = _normal(gen, D), _uniform(gen, 0.5, 2.0, D)
        param = {"mode": "train", "running_mean": rm, "running_var": rv}
        if momentum is not None:
            param["momentum"] = momentum
        handle = student.put(param)
        for step in range(1, 4):
            x = _normal(gen, N, D) * 2.0 + _normal(gen, D)
            _tuple(student.batchnorm_forward(x, np.ones(D), np.zeros(D), handle), 2,
                   "batchnorm_forward(x, gamma, beta, bn_param)", "(out, cache)")
            bn_param = student.value(handle)
            when = f"after train-mode call {step} (momentum {m}{', the default' if momentum is None else ''})"
            got_m = _running(bn_param, "running_mean", (D,), when)
            got_v = _running(bn_param, "running_var", (D,), when)
            mu, var = x.mean(axis=0), x.var(axis=0)
            _check_running_average(got_m, "running_mean", m * rm + (1 - m) * mu, (1 - m) * rm + m * mu, None, when)
            _check_running_average(got_v, "running_var", m * rv + (1 - m) * var, (1 - m) * rv + m * var,
                                   m * rv + (1 - m) * x.var(axis=0, ddof=1), when)
            rm, rv = m * rm + (1 - m) * mu, m * rv + (1 - m) * var


@judge("batchnorm_forward_batch_of_one")
def batchnorm_forward_batch_of_one(student, gen):
    D = 5
    for _ in range(2):
        x = 3 * _normal(gen, 1, D) + 2
        gamma, beta = _uniform(gen, 0.5, 2.0, D), _normal(gen, D)
        out, _, bn_param = _forward(student, "batchnorm_forward", x, gamma, beta, {"mode": "train"})
        out = _array(out, "out for a minibatch of one example", (1, D))
        check_close(out, beta[None], "out for a minibatch of one example", rtol=1e-6, atol=1e-6)
        for key in ("running_mean", "running_var"):
            value = _running(bn_param, key, (D,), "after a train-mode pass on one example")
            check_true(np.all(np.isfinite(value)),
                       f'bn_param["{key}"] after a train-mode pass on one example has NaN or infinite entries')


# ---------------------------------------------------------------------------------------------- batchnorm backward
@judge("batchnorm_backward_gradient_check")
def batchnorm_backward_gradient_check(student, gen):
    N, D = 4, 5
    x = 5 * _normal(gen, N, D) + 12
    gamma, beta, dout = _normal(gen, D), _normal(gen, D), _normal(gen, N, D)
    _backward_against_numerical(student, "batchnorm_forward", "batchnorm_backward", x, gamma, beta, dout)


@judge("batchnorm_backward_matches_autograd")
def batchnorm_backward_matches_autograd(student, gen):
    for N, D in [(8, 6), (3, 4), (50, 10)]:
        x = _normal(gen, N, D) * _uniform(gen, 0.3, 3.0, D) + 2 * _normal(gen, D)
        gamma, beta, dout = _normal(gen, D), _normal(gen, D), _normal(gen, N, D)
        _backward_against_autograd(student, "batchnorm_forward", "batchnorm_backward", x, gamma, beta, dout,
                                   f"N={N}, D={D}")


# ---------------------------------------------------------------------------------------------- dropout
def _dropout(student, x, param, what="dropout_forward(x, dropout_param)"):
    return _tuple(student.dropout_forward(x, param), 2, what, "(out, cache)")


@judge("dropout_forward_statistics")
def dropout_forward_statistics(student, gen):
    x = _normal(gen, 200, 200) + 10  # 40,000 entries: the dropped fraction is within 0.02 of p by 8 sigma
    for p in [0.25, 0.4, 0.7]:
        seed = _seed(gen)
        out_train = _array(_dropout(student, x, {"mode": "train", "p": p, "seed": seed})[0],
                           f"train-mode output for p = {p}", x.shape)
        out_test = _array(_dropout(student, x, {"mode": "test", "p": p, "seed": seed})[0],
                          f"test-mode output for p = {p}", x.shape)
        zero_fraction = np.mean(out_train == 0)
        check_true(abs(zero_fraction - p) < 0.02,
                   f"p = {p}: {zero_fraction:.3f} of the train-mode outputs are zero, expected about {p} "
                   "(p is the probability of dropping)")
        check_true(not np.isclose(out_train.mean(), (1 - p) * x.mean(), rtol=0.05),
                   f"p = {p}: the train-mode mean is (1 - p) times the input mean: inverted dropout divides the kept "
                   "activations by (1 - p)")
        check_close(out_train.mean(), x.mean(), f"p = {p}: mean of the train-mode output", rtol=0.05)
        check_close(out_test, x, f"p = {p}: test-mode output")


@judge("dropout_forward_matches_definition")
def dropout_forward_matches_definition(student, gen):
    x = _normal(gen, 200, 200) + 3.0  # 40,000 entries (see dropout_forward_statistics)
    for p in (0.1, 0.35, 0.8):
        seed = _seed(gen)
        out = _array(_dropout(student, x, {"mode": "train", "p": p, "seed": seed})[0],
                     "in train mode out", x.shape)
        dropped = out == 0
        check_true(abs(dropped.mean() - p) < 0.02,
                   f"with p = {p}, a fraction {dropped.mean():.3f} of the entries was dropped; expected about {p}")
        check_true(np.allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-6, atol=0),
                   f"with p = {p}, the kept entries should be the input divided by (1 - p)")
        again = _array(_dropout(student, x, {"mode": "train", "p": p, "seed": seed})[0], "in train mode out", x.shape)
        check_true(np.array_equal(again, out), "two train-mode calls with the same seed should give the same output")
        other = _array(_dropout(student, x, {"mode": "train", "p": p, "seed": seed + 1})[0], "in train mode out", x.shape)
        check_true(not np.array_equal(other == 0, dropped), "different seeds should drop different entries")
        test = _array(_dropout(student, x, {"mode": "test", "p": p})[0], "in test mode out", x.shape)
        check_true(np.array_equal(test, x), "in test mode the output should equal the input")


@judge("dropout_backward_gradient_check")
def dropout_backward_gradient_check(student, gen):
    x = _normal(gen, 5, 6) + 10
    dout = _normal(gen, *x.shape)
    param = {"mode": "train", "p": 0.2, "seed": _seed(gen)}
    _, cache = _dropout(student, x, param)
    dx = _array(student.dropout_backward(dout, cache), "dx", x.shape)
    dx_num = _numerical_gradient(lambda xs: student.call_many("dropout_forward", [(xx, param) for xx in xs], pick=0),
                                 x, dout, "dropout_forward(x, dropout_param)[0]")
    _check_gradient(dx, dx_num, "dx", 1e-8)


@judge("dropout_backward_matches_definition")
def dropout_backward_matches_definition(student, gen):
    x = _normal(gen, 60, 70) + 3.0
    dout = _normal(gen, *x.shape)
    for p in (0.3, 0.6):
        out, cache = _dropout(student, x, {"mode": "train", "p": p, "seed": _seed(gen)})
        out = _array(out, "in train mode out", x.shape)
        dx = _array(student.dropout_backward(dout, cache), "in train mode dx", dout.shape)
        kept = out != 0
        check_true(np.all(dx[~kept] == 0), f"with p = {p}, dx should be zero where the forward pass dropped an entry")
        check_true(np.allclose(dx[kept], dout[kept] / (1 - p), rtol=1e-6, atol=0),
                   f"with p = {p}, dx should be dout / (1 - p) where the forward pass kept an entry")
        _, cache_test = _dropout(student, x, {"mode": "test", "p": p})
        dx_test = _array(student.dropout_backward(dout, cache_test), "in test mode dx", dout.shape)
        check_true(np.array_equal(dx_test, dout), "in test mode dx should equal dout")


# ---------------------------------------------------------------------------------------------- spatial batchnorm
def _images(gen, N, C, H, W, scale=None, shift=None):
    scale = _uniform(gen, 0.3, 3.0, C) if scale is None else scale
    shift = 3 * _normal(gen, C) if shift is None else shift
    return _normal(gen, N, C, H, W) * scale[:, None, None] + shift[:, None, None]


@judge("spatial_batchnorm_forward_train_stats")
def spatial_batchnorm_forward_train_stats(student, gen):
    N, C, H, W = 2, 3, 4, 5
    x = _images(gen, N, C, H, W, _uniform(gen, 1.0, 4.0, C), 10 * _normal(gen, C))
    gamma, beta = _uniform(gen, 0.5, 5.0, C), 5 * _normal(gen, C)
    out, _, bn_param = _forward(student, "spatial_batchnorm_forward", x, gamma, beta, {"mode": "train"})
    out = _array(out, "out", (N, C, H, W))
    check_close(out.mean(axis=(0, 2, 3)), beta, "per-channel mean of out", rtol=1e-6, atol=1e-6)
    check_close(out.std(axis=(0, 2, 3)), gamma, "per-channel std of out", rtol=1e-4, atol=1e-6)
    _running(bn_param, "running_mean", (C,), "after a train-mode pass")
    _running(bn_param, "running_var", (C,), "after a train-mode pass")


@judge("spatial_batchnorm_forward_test_mode")
def spatial_batchnorm_forward_test_mode(student, gen):
    # the running averages are given, so a mistake in the train-mode update cannot fail this test
    for N, C, H, W in [(10, 4, 5, 6), (1, 3, 2, 7)]:
        x = _images(gen, N, C, H, W)
        gamma, beta = _uniform(gen, 0.5, 2.0, C), _normal(gen, C)
        running_mean, running_var = 3 * _normal(gen, C), _uniform(gen, 0.3, 12.0, C)
        _check_test_mode(student, "spatial_batchnorm_forward", x, gamma, beta, running_mean, running_var,
                         {"mode": "test", "running_mean": running_mean, "running_var": running_var},
                         f"test-mode out for input shape {(N, C, H, W)}")


@judge("spatial_batchnorm_forward_matches_torch")
def spatial_batchnorm_forward_matches_torch(student, gen):
    for shape in [(3, 4, 5, 3), (1, 3, 4, 6), (6, 1, 2, 2), (2, 5, 3, 7)]:
        C = shape[1]
        x = _images(gen, *shape)
        gamma, beta = _normal(gen, C), _normal(gen, C)
        rm, rv = _normal(gen, C), _uniform(gen, 0.5, 2.0, C)
        for mode in ("train", "test"):
            out, _, bn_param = _forward(student, "spatial_batchnorm_forward", x, gamma, beta,
                                        {"mode": mode, "momentum": 0.8, "running_mean": rm, "running_var": rv})
            ref, want_m, want_v = _torch_batchnorm(x, rm, rv, gamma, beta, mode == "train", 1e-5, momentum=0.8)
            out = _array(out, f"{mode}-mode out", ref.shape)
            check_true(np.allclose(out, ref, rtol=1e-4, atol=1e-5),
                       f"{mode} mode, input shape {shape}: out is wrong (largest error {np.max(np.abs(out - ref)):.3g})")
            got_m = _running(bn_param, "running_mean", (C,), f"after a {mode}-mode pass")
            got_v = _running(bn_param, "running_var", (C,), f"after a {mode}-mode pass")
            check_close(got_m, want_m, f'{mode} mode, input shape {shape}: bn_param["running_mean"]', rtol=1e-6, atol=1e-8)
            check_close(got_v, want_v, f'{mode} mode, input shape {shape}: bn_param["running_var"]', rtol=1e-6, atol=1e-8)


@judge("spatial_batchnorm_backward_gradient_check")
def spatial_batchnorm_backward_gradient_check(student, gen):
    N, C, H, W = 2, 3, 2, 3
    x = 5 * _normal(gen, N, C, H, W) + 12
    gamma, beta, dout = _normal(gen, C), _normal(gen, C), _normal(gen, N, C, H, W)
    _backward_against_numerical(student, "spatial_batchnorm_forward", "spatial_batchnorm_backward", x, gamma, beta, dout)


@judge("spatial_batchnorm_backward_matches_autograd")
def spatial_batchnorm_backward_matches_autograd(student, gen):
    for shape in [(3, 4, 5, 3), (1, 3, 4, 6), (6, 1, 2, 2)]:
        C = shape[1]
        x = _images(gen, *shape)
        gamma, beta, dout = _normal(gen, C), _normal(gen, C), _normal(gen, *shape)
        _backward_against_autograd(student, "spatial_batchnorm_forward", "spatial_batchnorm_backward", x, gamma, beta,
                                   dout, f"input shape {shape}")


# ---------------------------------------------------------------------------------------------- parameter counts
FC_IN, FC_OUT = 64, 40  # the notebook's fully connected layer, followed by batch normalization over FC_OUT features
BN_TRAINABLE = 2 * FC_OUT  # gamma and beta
FC_BN_TRAINABLE = FC_IN * FC_OUT + FC_OUT + BN_TRAINABLE


def _count(student, name):
    value = student.value(name)
    if value is None:
        raise Fail(f"{name} is None: assign the number")
    if isinstance(value, Remote) or isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise Fail(f"{name} should be an integer, but it is a {_kind(value)}")
    if float(value) != int(value):
        raise Fail(f"{name} should be a whole number, not {value}")
    return int(value)


@judge("bn_trainable_params_value")
def bn_trainable_params_value(student, gen):
    got = _count(student, "bn_trainable_params")
    check_true(got != 4 * FC_OUT, "bn_trainable_params counts running_mean and running_var, which are not learned")
    check_true(got == BN_TRAINABLE, f"bn_trainable_params = {got} is not the number of trainable parameters of the "
                                    "batch normalization layer")


@judge("fc_bn_trainable_params_value")
def fc_bn_trainable_params_value(student, gen):
    got = _count(student, "fc_bn_trainable_params")
    check_true(got != FC_BN_TRAINABLE - FC_OUT, "fc_bn_trainable_params leaves out the bias of the fully connected layer")
    check_true(got != FC_BN_TRAINABLE + 2 * FC_OUT,
               "fc_bn_trainable_params counts running_mean and running_var, which are not learned")
    check_true(got == FC_BN_TRAINABLE, f"fc_bn_trainable_params = {got} is not the number of trainable parameters of "
                                       "the two layers")
