"""Judges of hw2/conv_layers.ipynb: every autograded cell is decided here, outside the student's kernel.

The student's NumPy layers are probed on float64 inputs drawn from ``gen`` and compared with
``torch.nn.functional.conv2d`` / ``max_pool2d`` and their autograd gradients, computed here. The gradient
checks compare the student's backward pass with central differences of the student's own forward pass
along random directions (each difference is two probes, so the number of probes stays small); when one
disagrees, the gradient is recomputed entry by entry (the input's entries in one batched probe, the weights'
one entry at a time) so that the message names the worst entry. The handout's fixed examples stay fixed.
"""
import numpy as np
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_type
from eep590_utils.grading.judge import Fail, StudentError, judge, numerical_gradient

RTOL, ATOL = 1e-5, 1e-6  # against torch, float64 inputs: any correct loop order passes by orders of magnitude


def _randint(gen, low, high):
    """An int in [low, high] (both included), drawn from gen."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _normal(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).numpy()


def _output(result, name):
    """The first entry of a (out, cache) pair returned by a forward function."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fail(f"{name} should return a pair (out, cache)")
    return result[0], result[1]


def _array(value, name):
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise Fail(f"{name} should be a NumPy array of numbers, it is a {type(value).__name__}")
    return value.astype(np.float64)


def _conv_case(gen, stride, pad, non_square=False):
    """x, w, b, conv_param: non-square inputs and filters, 1 to 3 images, channels and filters.

    non_square=True forces a non-square kernel (so that a kernel read as (WW, HH) never passes by chance).
    """
    N, C, Fn = _randint(gen, 1, 3), _randint(gen, 1, 3), _randint(gen, 1, 4)
    H, W = _randint(gen, 5, 9), _randint(gen, 5, 9)
    HH, WW = _randint(gen, 1, 4), _randint(gen, 1, 4)
    if non_square and HH == WW:
        WW = HH % 4 + 1
    return (_normal(gen, N, C, H, W), _normal(gen, Fn, C, HH, WW), _normal(gen, Fn),
            {"stride": stride, "pad": pad})


CONV_SETTINGS = [(1, 0), (2, 0), (1, 1), (2, 1), (1, 2), (2, 2)]


def _describe(x, w, conv_param):
    return f"x of shape {x.shape}, w of shape {w.shape}, stride={conv_param['stride']}, pad={conv_param['pad']}"


def _check_output_shape(out_shape, x_shape, w_shape, conv_param, case):
    """Fail unless the forward output has the expected shape; say so when the kernel was read as (WW, HH)."""
    (N, _, H, W), (Fn, _, HH, WW) = x_shape, w_shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    expected = (N, Fn, 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride)
    swapped = (N, Fn, 1 + (H + 2 * pad - WW) // stride, 1 + (W + 2 * pad - HH) // stride)
    if tuple(out_shape) != expected:
        if tuple(out_shape) == swapped:
            raise Fail(f"the output has shape {tuple(out_shape)} for {case}, expected {expected}: that is the output of "
                       f"a kernel of height {WW} and width {HH}, but w has shape (F, C, HH, WW) = {tuple(w_shape)}: "
                       "the kernel height HH is w.shape[2] and its width WW is w.shape[3]")
        raise Fail(f"the output has shape {tuple(out_shape)} for {case}; expected {expected}")


def _forward(student, x, w, b, conv_param, case):
    """student.conv_forward_naive(...) as (out, cache); an error with a non-square kernel says HH and WW may be swapped."""
    try:
        return _output(student.conv_forward_naive(x, w, b, conv_param), "conv_forward_naive")
    except StudentError as error:
        if w.shape[2] == w.shape[3] or error.ename not in ("ValueError", "IndexError"):
            raise
        raise Fail(f"your code raised {error.ename}: {error.evalue} ({case}). The kernel is not square: w has shape "
                   f"(F, C, HH, WW), so its height HH is w.shape[2] = {w.shape[2]} and its width WW is w.shape[3] = "
                   f"{w.shape[3]}: are HH and WW swapped somewhere?") from None


def _check_grad_shape(grad, like, name, layout):
    """check_shape naming what the gradient belongs to (a swapped HH/WW shows as 'axes 2 and 3 are swapped')."""
    check_shape(grad, like.shape, f"{name} (the gradient of {name[1:]}, which has shape {layout} = {like.shape})")


# ----------------------------------------------------------------------------------------------------------
# Question 1: convolution, forward pass


@judge("conv_forward_output_shape")
def conv_forward_output_shape(student, gen):
    for (x_shape, w_shape, stride, pad), expected in [
            (((2, 3, 5, 5), (4, 3, 3, 3), 1, 1), (2, 4, 5, 5)),
            (((1, 2, 7, 6), (3, 2, 3, 2), 2, 0), (1, 3, 3, 3)),
            (((3, 1, 6, 9), (2, 1, 2, 4), 3, 2), (3, 2, 3, 4))]:
        conv_param = {"stride": stride, "pad": pad}
        out, _ = _forward(student, np.ones(x_shape), np.ones(w_shape), np.zeros(w_shape[0]), conv_param,
                          f"x of shape {x_shape}")
        check_type(out, np.ndarray, "conv_forward_naive(...)[0]")
        _check_output_shape(out.shape, x_shape, w_shape, conv_param,
                            f"x of shape {x_shape}, w of shape {w_shape}, stride={stride}, pad={pad}")
        check_shape(out, expected, f"conv_forward_naive output for x {x_shape}, w {w_shape}, stride={stride}, pad={pad}")


@judge("conv_forward_example")
def conv_forward_example(student, gen):
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = _output(student.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1}), "conv_forward_naive")
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    check_close(out, correct_out, "conv_forward_naive(x, w, b, stride=2, pad=1)", rtol=1e-6, atol=1e-7)


@judge("conv_forward_matches_torch")
def conv_forward_matches_torch(student, gen):
    for i, (stride, pad) in enumerate(CONV_SETTINGS):
        x, w, b, conv_param = _conv_case(gen, stride, pad, non_square=i == 0)
        want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=pad).numpy()
        case = _describe(x, w, conv_param)
        out, _ = _forward(student, x, w, b, conv_param, case)
        out = _array(out, f"the output for {case}")
        _check_output_shape(out.shape, x.shape, w.shape, conv_param, case)
        if not np.allclose(out, want, rtol=RTOL, atol=ATOL):
            raise Fail(f"wrong output values for {case}")


# ----------------------------------------------------------------------------------------------------------
# Question 2: convolution, backward pass


def _numerical_projection(forward_many, inputs, index, v, dout, h):
    """The centred difference of <forward(...), dout> along ``v`` in inputs[index], both evaluations in one probe."""
    plus, minus = list(inputs), list(inputs)
    plus[index], minus[index] = inputs[index] + h * v, inputs[index] - h * v
    f_plus, f_minus = (_array(out, "the forward output") for out in forward_many([plus, minus]))
    if f_plus.shape != dout.shape or f_minus.shape != dout.shape:
        raise Fail("the forward pass gives outputs of different shapes")
    return float(np.sum((f_plus - f_minus) * dout) / (2 * h))


def _gradient_check(gen, forward_many, inputs, grads, dout, names, directions=3, h=1e-5, tol=1e-6):
    """For each input, <grad, v> against the central difference of <forward(...), dout> along random v;
    ``forward_many(list of argument lists)`` gives the forward outputs of all of them in one probe.

    On a disagreement, the whole numerical gradient of that input is computed (one probe) so that the message
    names the worst entry (index, the student's value, the numerical one, the relative error).
    """
    for index, (grad, name) in enumerate(zip(grads, names)):
        if grad is None:
            continue
        for _ in range(directions):
            v = torch.randn(*inputs[index].shape, generator=gen, dtype=torch.float64).numpy()
            numeric = _numerical_projection(forward_many, inputs, index, v, dout, h)
            analytic = float(np.sum(grad * v))
            error = abs(numeric - analytic) / max(1e-8, abs(numeric) + abs(analytic))
            if error >= tol:
                def moved(xs, index=index):
                    return forward_many([inputs[:index] + [x] + inputs[index + 1:] for x in xs])

                try:
                    full = numerical_gradient(moved, inputs[index], dout, h, output=lambda o: _array(o, "the forward output"))
                except (AssertionError, StudentError):  # the verdict is decided already: this only locates the error
                    full = None
                if full is not None:
                    check_close(grad, full, f"{name} against the numerical gradient of your forward pass",
                                max_rel_error=tol)
                raise Fail(f"{name} disagrees with the numerical gradient (relative error {error:.2e})")


@judge("conv_backward_gradient_check")
def conv_backward_gradient_check(student, gen):
    x, w, b = _normal(gen, 3, 2, 6, 5), _normal(gen, 3, 2, 3, 2), _normal(gen, 3)
    conv_param = {"stride": 2, "pad": 1}
    out, cache = _forward(student, x, w, b, conv_param, _describe(x, w, conv_param))
    out = _array(out, "conv_forward_naive(...)[0]")
    dout = _normal(gen, *out.shape)
    grads = student.conv_backward_naive(dout, cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        raise Fail("conv_backward_naive should return a tuple (dx, dw, db)")
    dx, dw, db = (_array(g, name) for g, name in zip(grads, ["dx", "dw", "db"]))
    _check_grad_shape(dx, x, "dx", "(N, C, H, W)")
    _check_grad_shape(dw, w, "dw", "(F, C, HH, WW)")
    _check_grad_shape(db, b, "db", "(F,)")

    def forward_many(arg_lists):  # every (x, w, b) in one probe; the outputs only
        return student.call_many("conv_forward_naive", [(*args, conv_param) for args in arg_lists], pick=0)

    _gradient_check(gen, forward_many, [x, w, b], [dx, dw, db], dout, ["dx", "dw", "db"])


def _conv_backward_matches_torch(student, gen, which):
    name = ["dx", "dw", "db"][which]
    for i, (stride, pad) in enumerate(CONV_SETTINGS):
        x, w, b, conv_param = _conv_case(gen, stride, pad, non_square=i == 0)
        xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
        outt = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
        dout = _normal(gen, *outt.shape)
        outt.backward(torch.from_numpy(dout))
        want = [xt.grad, wt.grad, bt.grad][which].numpy()
        case = _describe(x, w, conv_param)
        _, cache = _forward(student, x, w, b, conv_param, case)
        grads = student.conv_backward_naive(dout, cache)
        if not isinstance(grads, (tuple, list)) or len(grads) != 3:
            raise Fail("conv_backward_naive should return a tuple (dx, dw, db)")
        got = _array(grads[which], f"{name} for {case}")
        like, layout = [(x, "(N, C, H, W)"), (w, "(F, C, HH, WW)"), (b, "(F,)")][which]
        _check_grad_shape(got, like, name, layout)
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
            raise Fail(f"wrong {name} for {case}")


@judge("conv_backward_dx_matches_torch")
def conv_backward_dx_matches_torch(student, gen):
    _conv_backward_matches_torch(student, gen, 0)


@judge("conv_backward_dw_matches_torch")
def conv_backward_dw_matches_torch(student, gen):
    _conv_backward_matches_torch(student, gen, 1)


@judge("conv_backward_db_matches_torch")
def conv_backward_db_matches_torch(student, gen):
    _conv_backward_matches_torch(student, gen, 2)


# ----------------------------------------------------------------------------------------------------------
# Questions 3 and 4: max pooling


def _pool_param(ph, pw, s):
    return {"pool_height": ph, "pool_width": pw, "stride": s}


def _pool_input(gen):
    return _normal(gen, _randint(gen, 1, 3), _randint(gen, 1, 3), _randint(gen, 5, 10), _randint(gen, 5, 10))


@judge("max_pool_forward_output_shape")
def max_pool_forward_output_shape(student, gen):
    for x_shape, (ph, pw, s), expected in [((2, 3, 8, 8), (2, 2, 2), (2, 3, 4, 4)),
                                           ((1, 2, 7, 5), (3, 2, 2), (1, 2, 3, 2)),
                                           ((2, 1, 6, 9), (2, 3, 1), (2, 1, 5, 7))]:
        out, _ = _output(student.max_pool_forward_naive(np.ones(x_shape), _pool_param(ph, pw, s)), "max_pool_forward_naive")
        check_type(out, np.ndarray, "max_pool_forward_naive(...)[0]")
        check_shape(out, expected, f"max_pool_forward_naive output for x {x_shape}, pool {ph}x{pw}, stride={s}")


@judge("max_pool_forward_example")
def max_pool_forward_example(student, gen):
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = _output(student.max_pool_forward_naive(x, _pool_param(2, 2, 2)), "max_pool_forward_naive")
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    check_close(out, correct_out, "max_pool_forward_naive(x, 2 x 2, stride=2)", rtol=1e-6, atol=1e-7)


@judge("max_pool_forward_matches_torch")
def max_pool_forward_matches_torch(student, gen):
    for ph, pw, s in [(2, 2, 2), (3, 2, 2), (2, 3, 1), (3, 3, 3), (1, 2, 2)]:
        x = _pool_input(gen)
        want = F.max_pool2d(torch.from_numpy(x), (ph, pw), stride=s).numpy()
        out, _ = _output(student.max_pool_forward_naive(x, _pool_param(ph, pw, s)), "max_pool_forward_naive")
        case = f"x of shape {x.shape}, pool {ph}x{pw}, stride={s}"
        out = _array(out, f"the output for {case}")
        if out.shape != want.shape:
            raise Fail(f"the output has shape {out.shape} for {case}; expected {want.shape}")
        if not np.allclose(out, want, rtol=RTOL, atol=ATOL):
            raise Fail(f"wrong output values for {case}")


@judge("max_pool_backward_gradient_check")
def max_pool_backward_gradient_check(student, gen):
    # distinct values 0.05 apart in random order: no window holds two maxima closer than the finite difference's step
    x = (torch.randperm(3 * 2 * 8 * 7, generator=gen).to(torch.float64).numpy() * 0.05 - 8.0).reshape(3, 2, 8, 7)
    pool_param = _pool_param(2, 2, 2)
    out, cache = _output(student.max_pool_forward_naive(x, pool_param), "max_pool_forward_naive")
    out = _array(out, "max_pool_forward_naive(...)[0]")
    dout = _normal(gen, *out.shape)
    dx = _array(student.max_pool_backward_naive(dout, cache), "dx")
    _check_grad_shape(dx, x, "dx", "(N, C, H, W)")

    def forward_many(arg_lists):  # every x in one probe; the outputs only
        return student.call_many("max_pool_forward_naive", [(*args, pool_param) for args in arg_lists], pick=0)

    _gradient_check(gen, forward_many, [x], [dx], dout, ["dx"], directions=4)


@judge("max_pool_backward_matches_torch")
def max_pool_backward_matches_torch(student, gen):
    for ph, pw, s in [(2, 2, 2), (3, 2, 2), (2, 3, 1), (3, 3, 3), (2, 2, 1)]:
        x = _pool_input(gen)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        outt = F.max_pool2d(xt, (ph, pw), stride=s)
        dout = _normal(gen, *outt.shape)
        outt.backward(torch.from_numpy(dout))
        _, cache = _output(student.max_pool_forward_naive(x, _pool_param(ph, pw, s)), "max_pool_forward_naive")
        case = f"x of shape {x.shape}, pool {ph}x{pw}, stride={s}"
        got = _array(student.max_pool_backward_naive(dout, cache), f"dx for {case}")
        if got.shape != x.shape:
            raise Fail(f"dx has shape {got.shape} for {case}; expected {x.shape}")
        if not np.allclose(got, xt.grad.numpy(), rtol=RTOL, atol=ATOL):
            raise Fail(f"wrong dx for {case}")
