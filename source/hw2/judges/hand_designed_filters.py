"""Judges of hw2/hand_designed_filters.ipynb: every autograded cell is decided here, outside the student's kernel.

``filter_2d`` is probed on images and kernels drawn from ``gen`` and compared with
``torch.nn.functional.conv2d`` (a cross-correlation, zero padding), computed here; ``blur_kernel`` and
``edge_kernel`` are read as data and applied here, with torch, to noise, steps and flat images.
"""
import numpy as np
import torch
import torch.nn.functional as F

from eep590_utils.checks import check_close, check_shape, check_true, check_type
from eep590_utils.grading.judge import Fail, judge


def _randint(gen, low, high):
    """An int in [low, high] (both included), drawn from gen."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _normal(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).numpy()


# ----------------------------------------------------------------------------------------------------------
# Question 1: filter_2d


@judge("filter_2d_output_shape")
def filter_2d_output_shape(student, gen):
    out = student.filter_2d(np.ones((6, 9)), np.ones((3, 5)))
    check_type(out, np.ndarray, "filter_2d(image, kernel)")
    check_shape(out, (6, 9), "filter_2d for a (6, 9) image and a (3, 5) kernel")


@judge("filter_2d_example")
def filter_2d_example(student, gen):
    image_example = np.array([[1.0, 2.0, 0.0, 3.0],
                              [4.0, 0.0, 1.0, 2.0],
                              [0.0, 5.0, 2.0, 1.0]])
    kernel_example = np.array([[0.0, 1.0, 0.0],
                               [0.0, 0.0, 2.0],
                               [0.0, 0.0, 0.0]])
    check_close(student.filter_2d(image_example, kernel_example),
                np.array([[4.0, 0.0, 6.0, 0.0],
                          [1.0, 4.0, 4.0, 3.0],
                          [14.0, 4.0, 3.0, 2.0]]),
                "filter_2d(image_example, kernel_example)")


@judge("filter_2d_matches_conv2d")
def filter_2d_matches_conv2d(student, gen):
    sizes = [(3, 3), (5, 3), (1, 1), (3, 7), (5, 5)]  # square and not, including the trivial 1 x 1
    for kh, kw in sizes:
        H, W = _randint(gen, max(kh, 4), 11), _randint(gen, max(kw, 4), 11)
        image, kernel = _normal(gen, H, W), _normal(gen, kh, kw)
        want = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None],
                        padding=((kh - 1) // 2, (kw - 1) // 2))[0, 0].numpy()
        got = student.filter_2d(image, kernel)
        case = f"a {H}x{W} image and a {kh}x{kw} kernel"
        if isinstance(got, (list, tuple)):
            try:
                got = np.asarray(got, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
            raise Fail(f"for {case} filter_2d should return a NumPy array of numbers, not a {type(got).__name__}")
        if got.shape != want.shape:
            raise Fail(f"for {case} the output should have shape {want.shape}, not {got.shape}")
        if not np.allclose(got, want, rtol=1e-6, atol=1e-8):
            raise Fail(f"wrong values for {case}")


# ----------------------------------------------------------------------------------------------------------
# Kernels: read as data, checked here


def _kernel(student, name):
    kernel = student.value(name)
    check_type(kernel, np.ndarray, name)
    return kernel


def _format(student, name):
    kernel = _kernel(student, name)
    check_true(kernel.ndim == 2, f"{name} should be 2-D, it has shape {kernel.shape}")
    check_true(kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1,
               f"{name} should have an odd number of rows and columns, it has shape {kernel.shape}")


def _as_conv_weight(kernel, name):
    """kernel as a (1, 1, kh, kw) float64 tensor (Fail unless it is a 2-D numeric array)."""
    if kernel.ndim != 2 or kernel.dtype.kind not in "biuf":
        raise Fail(f"{name} should be a 2-D array of numbers, it has shape {kernel.shape} and dtype {kernel.dtype}")
    return torch.from_numpy(np.asarray(kernel, dtype=np.float64))[None, None]


@judge("blur_kernel_format")
def blur_kernel_format(student, gen):
    _format(student, "blur_kernel")


@judge("blur_kernel_non_negative")
def blur_kernel_non_negative(student, gen):
    kernel = _kernel(student, "blur_kernel")
    check_true(kernel.size > 0 and np.min(kernel) >= 0,
               f"blur_kernel has a negative weight ({np.min(kernel) if kernel.size else 'none'}): "
               "a blur averages, it never subtracts")


@judge("blur_kernel_sums_to_one")
def blur_kernel_sums_to_one(student, gen):
    kernel = _kernel(student, "blur_kernel")
    check_close(np.sum(kernel), 1.0, "the sum of the weights of blur_kernel")


@judge("blur_kernel_smooths_noise")
def blur_kernel_smooths_noise(student, gen):
    kernel = _kernel(student, "blur_kernel")
    weight = _as_conv_weight(kernel, "blur_kernel")
    total = float(weight.sum())
    check_true(total > 0, "the weights of blur_kernel should have a positive sum")
    noise = torch.randn(1, 1, 200, 200, generator=gen, dtype=torch.float64)
    smoothed = F.conv2d(noise, weight / total)
    ratio = float(smoothed.var() / noise.var())
    check_true(ratio < 0.5, f"blur_kernel keeps {ratio:.2f} of the noise variance; a blur should keep less than half: "
               "average over more pixels")


@judge("edge_kernel_format")
def edge_kernel_format(student, gen):
    _format(student, "edge_kernel")


@judge("edge_kernel_sums_to_zero")
def edge_kernel_sums_to_zero(student, gen):
    kernel = _kernel(student, "edge_kernel")
    check_close(np.sum(kernel), 0.0, "the sum of the weights of edge_kernel", atol=1e-9)


@judge("edge_kernel_responds_to_step")
def edge_kernel_responds_to_step(student, gen):
    weight = _as_conv_weight(_kernel(student, "edge_kernel"), "edge_kernel")
    column = _randint(gen, 6, 10)  # where the step is, away from the border
    step = torch.zeros(16, 16, dtype=torch.float64)
    step[:, column:] = 1.0
    strongest = 0.0
    for image in (step, step.T):
        if weight.shape[-1] > 16 or weight.shape[-2] > 16:
            raise Fail(f"edge_kernel of shape {tuple(weight.shape[-2:])} is larger than the 16 x 16 test image")
        response = F.conv2d(image[None, None], weight)
        strongest = max(strongest, float(response.abs().max()))
    check_true(strongest >= 1 - 1e-9, f"on a step edge of height 1 the strongest response of edge_kernel is only "
               f"{strongest:.3g}; it should be at least 1")


@judge("edge_kernel_ignores_flat_image")
def edge_kernel_ignores_flat_image(student, gen):
    weight = _as_conv_weight(_kernel(student, "edge_kernel"), "edge_kernel")
    if weight.shape[-1] > 12 or weight.shape[-2] > 12:
        raise Fail(f"edge_kernel of shape {tuple(weight.shape[-2:])} is larger than the 12 x 12 test image")
    levels = [0.2, 0.5, 1.0] + [round(float(v), 3) for v in torch.rand(2, generator=gen, dtype=torch.float64)]
    for level in levels:
        response = F.conv2d(torch.full((1, 1, 12, 12), level, dtype=torch.float64), weight)
        worst = float(response.abs().max())
        check_true(worst < 1e-9, f"on a flat image of brightness {level} edge_kernel answers {worst:.3g}, not 0")
