"""Judges of hw1/cross_correlation.ipynb: ``cross_corr_2d``, ``cross_corr_2d_strided`` and
``corr2d_multi_in_out`` against ``torch.nn.functional.conv2d`` (which does not flip the kernel), on the
handout's examples and on inputs drawn from ``gen``. The usual mistakes each have their own message: a
flipped kernel (true convolution), nothing returned, an off-by-one output size, a dtype other than X's."""
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_true, check_type
from eep590_utils.grading.judge import Fail, Remote, judge


def _tensor(value, name):
    """``value`` as a torch.Tensor, or a failure that says what came back instead."""
    if isinstance(value, Remote):
        raise Fail(f"{name} should be a torch.Tensor, but it is a {value.type_name}")
    check_type(value, torch.Tensor, name)
    return value


def _randint(low, high, gen):
    """An int in [low, high)."""
    return int(torch.randint(low, high, (1,), generator=gen))


def _compare(Y, expected, what, flipped=None):
    """Fail unless Y (a tensor) has expected's shape and values; name a flipped kernel when that is it."""
    if tuple(Y.shape) != tuple(expected.shape):
        raise Fail(f"{what} the output should have shape {tuple(expected.shape)}, not {tuple(Y.shape)}")
    Y = Y.detach().double()
    expected = expected.double()
    if torch.allclose(Y, expected, rtol=1e-4, atol=1e-4):
        return
    if flipped is not None and torch.allclose(Y, flipped.double(), rtol=1e-4, atol=1e-4):
        raise Fail(f"{what} the output is a true convolution (flipped kernel), not a cross-correlation")
    check_close(Y, expected, f"the output {what}", rtol=1e-4, atol=1e-4)  # names the worst entry


# ---------------------------------------------------------------------------------------------- cross_corr_2d
@judge("cross_corr_2d_example")
def cross_corr_2d_example(student, gen):
    # the handout's example: its numbers are the point of this test
    X = torch.tensor([[0.0, 5.0, 8.0], [2.0, 1.0, 4.0], [4.0, 3.0, 7.0]])
    K = torch.tensor([[5.0, 1.0], [3.0, 1.0]])
    Y = _tensor(student.cross_corr_2d(X, K), "cross_corr_2d(X, K)")
    check_shape(Y, (2, 2), "cross_corr_2d(X, K)")
    check_true(not torch.allclose(Y.detach().double(), torch.tensor([[22.0, 50.0], [24.0, 51.0]], dtype=torch.float64)),
               "cross_corr_2d(X, K) flipped the kernel (that is a true convolution); cross-correlation uses K as it is")
    check_close(Y, torch.tensor([[12.0, 40.0], [26.0, 25.0]]), "cross_corr_2d(X, K)")


@judge("cross_corr_2d_shape_and_dtype")
def cross_corr_2d_shape_and_dtype(student, gen):
    X = torch.randn(4, 6, generator=gen)
    K = torch.randn(2, 3, generator=gen)
    Y = _tensor(student.cross_corr_2d(X, K), "cross_corr_2d(X, K)")
    check_shape(Y, (3, 4), "cross_corr_2d(X, K) for a (4, 6) input and a (2, 3) kernel")
    check_true(Y.dtype == torch.float32,
               f"cross_corr_2d(X, K) has dtype {Y.dtype}, but X has dtype torch.float32: keep the dtype of X")


@judge("cross_corr_2d_matches_conv2d")
def cross_corr_2d_matches_conv2d(student, gen):
    # non-square inputs and kernels, 1 x 1 kernels, kernels as large as the input, then random shapes
    cases = [(5, 7, 2, 3), (6, 4, 3, 1), (4, 4, 1, 1), (3, 5, 3, 5), (8, 3, 4, 2), (1, 6, 1, 2), (7, 9, 7, 1)]
    for _ in range(6):
        H, W = _randint(1, 11, gen), _randint(1, 11, gen)
        cases.append((H, W, _randint(1, H + 1, gen), _randint(1, W + 1, gen)))
    for H, W, kh, kw in cases:
        X, K = torch.randn(H, W, generator=gen), torch.randn(kh, kw, generator=gen)
        expected = F.conv2d(X[None, None], K[None, None])[0, 0]
        flipped = F.conv2d(X[None, None], K.flip(0, 1)[None, None])[0, 0]
        Y = _tensor(student.cross_corr_2d(X, K), "cross_corr_2d(X, K)")
        _compare(Y, expected, f"for a {H}x{W} input and a {kh}x{kw} kernel", flipped)


@judge("cross_corr_2d_keeps_dtype")
def cross_corr_2d_keeps_dtype(student, gen):
    for dtype in (torch.float32, torch.float64):
        X = torch.randn(5, 6, generator=gen, dtype=dtype)
        K = torch.randn(2, 2, generator=gen, dtype=dtype)
        Y = _tensor(student.cross_corr_2d(X, K), "cross_corr_2d(X, K)")
        check_true(Y.dtype == dtype, f"for a {dtype} input the output should be {dtype}, not {Y.dtype}")


# ---------------------------------------------------------------------------------------------- stride, padding
@judge("strided_output_shape")
def strided_output_shape(student, gen):
    for (H, W, kh, kw, s, p), shape in [((5, 5, 3, 3, 1, 1), (5, 5)), ((5, 5, 3, 3, 2, 1), (3, 3)),
                                         ((7, 4, 2, 3, 3, 0), (2, 1)), ((6, 8, 1, 1, 2, 2), (5, 6))]:
        X, K = torch.randn(H, W, generator=gen), torch.randn(kh, kw, generator=gen)
        Y = _tensor(student.cross_corr_2d_strided(X, K, stride=s, padding=p), "cross_corr_2d_strided(...)")
        check_shape(Y, shape, f"cross_corr_2d_strided for a ({H}, {W}) input, a ({kh}, {kw}) kernel, stride={s}, padding={p}")


@judge("strided_fir_example")
def strided_fir_example(student, gen):
    # the notebook's worked example (a 5 x 6 input, a kernel that is not symmetric): its numbers are the point
    x = torch.tensor([[2.0, 0.0, 1.0, 3.0, 1.0, 0.0],
                      [1.0, 4.0, 0.0, 2.0, 2.0, 1.0],
                      [0.0, 1.0, 3.0, 1.0, 0.0, 2.0],
                      [3.0, 2.0, 1.0, 0.0, 4.0, 1.0],
                      [1.0, 0.0, 2.0, 1.0, 1.0, 3.0]])
    h = torch.tensor([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0], [0.0, -1.0, 2.0]])
    for stride, expected in [
        (1, torch.tensor([[9.0, 0.0, 5.0, 7.0, 7.0, 1.0], [3.0, 12.0, 4.0, 1.0, 13.0, 4.0],
                          [-3.0, 2.0, 6.0, 13.0, 1.0, 3.0], [1.0, 9.0, 5.0, 6.0, 8.0, 6.0],
                          [-1.0, 4.0, 4.0, 2.0, 2.0, 9.0]])),
        (2, torch.tensor([[9.0, 5.0, 7.0], [-3.0, 6.0, 1.0], [-1.0, 4.0, 2.0]])),
    ]:
        call = f"cross_corr_2d_strided(x, h, stride={stride}, padding=1)"
        Y = _tensor(student.cross_corr_2d_strided(x, h, stride=stride, padding=1), call)
        check_shape(Y, tuple(expected.shape), call)  # names the call: "... has shape (2, 3), expected (3, 3)"
        flipped = F.conv2d(x[None, None], h.flip(0, 1)[None, None], stride=stride, padding=1)[0, 0]
        _compare(Y, expected, f"for {call}", flipped)


@judge("strided_matches_conv2d")
def strided_matches_conv2d(student, gen):
    cases = [(6, 7, 3, 2, 1, 0), (6, 7, 3, 2, 2, 1), (9, 5, 2, 2, 3, 2), (4, 4, 1, 1, 2, 0),
             (5, 8, 1, 3, 1, 2), (3, 3, 3, 3, 2, 1), (2, 3, 4, 5, 1, 2), (10, 6, 3, 4, 3, 1)]
    for _ in range(6):
        H, W, s, p = _randint(1, 11, gen), _randint(1, 11, gen), _randint(1, 4, gen), _randint(0, 3, gen)
        cases.append((H, W, _randint(1, H + 2 * p + 1, gen), _randint(1, W + 2 * p + 1, gen), s, p))
    for H, W, kh, kw, s, p in cases:
        X, K = torch.randn(H, W, generator=gen), torch.randn(kh, kw, generator=gen)
        expected = F.conv2d(X[None, None], K[None, None], stride=s, padding=p)[0, 0]
        flipped = F.conv2d(X[None, None], K.flip(0, 1)[None, None], stride=s, padding=p)[0, 0]
        Y = _tensor(student.cross_corr_2d_strided(X, K, stride=s, padding=p), "cross_corr_2d_strided(X, K, stride, padding)")
        _compare(Y, expected, f"for a {H}x{W} input, a {kh}x{kw} kernel, stride={s} and padding={p}", flipped)


@judge("strided_keeps_dtype")
def strided_keeps_dtype(student, gen):
    for dtype in (torch.float32, torch.float64):
        X = torch.randn(6, 5, generator=gen, dtype=dtype)
        K = torch.randn(3, 2, generator=gen, dtype=dtype)
        Y = _tensor(student.cross_corr_2d_strided(X, K, stride=2, padding=1), "cross_corr_2d_strided(X, K, stride=2, padding=1)")
        check_true(Y.dtype == dtype, f"for a {dtype} input the output should be {dtype}, not {Y.dtype}")


# ---------------------------------------------------------------------------------------------- channels
@judge("multi_in_out_example")
def multi_in_out_example(student, gen):
    # the handout's example (two input channels, three output channels: the kernels K, K + 1 and K + 2)
    X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                      [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K1 = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    K = torch.stack((K1, K1 + 1, K1 + 2))
    Y = _tensor(student.corr2d_multi_in_out(X, K), "corr2d_multi_in_out(X, K)")
    check_shape(Y, (3, 2, 2), "corr2d_multi_in_out(X, K)")
    check_close(Y, torch.tensor([[[56.0, 72.0], [104.0, 120.0]],
                                 [[76.0, 100.0], [148.0, 172.0]],
                                 [[96.0, 128.0], [192.0, 224.0]]]), "corr2d_multi_in_out(X, K)")


@judge("multi_in_out_matches_conv2d")
def multi_in_out_matches_conv2d(student, gen):
    cases = [(3, 2, 5, 6, 2, 3), (1, 4, 4, 3, 1, 1), (2, 1, 3, 5, 3, 5), (4, 3, 6, 4, 3, 2)]
    H, W = _randint(2, 8, gen), _randint(2, 8, gen)
    cases.append((_randint(1, 5, gen), _randint(1, 5, gen), H, W, _randint(1, H + 1, gen), _randint(1, W + 1, gen)))
    for c_in, c_out, H, W, kh, kw in cases:
        X = torch.randn(c_in, H, W, generator=gen)
        K = torch.randn(c_out, c_in, kh, kw, generator=gen)
        expected = F.conv2d(X[None], K)[0]
        Y = _tensor(student.corr2d_multi_in_out(X, K), "corr2d_multi_in_out(X, K)")
        if tuple(Y.shape) != tuple(expected.shape):
            raise Fail(f"for {c_in} input channels, {c_out} output channels, a {H}x{W} input and a {kh}x{kw} kernel "
                       f"the output should have shape {tuple(expected.shape)}, not {tuple(Y.shape)}")
        worst = (Y.detach().double() - expected.double()).abs().max().item()
        check_true(worst <= 1e-4 * (1 + expected.abs().max().item()),
                   f"wrong values for {c_in} input channels, {c_out} output channels and a {kh}x{kw} kernel "
                   f"(largest error {worst:.3g})")
