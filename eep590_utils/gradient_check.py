"""Numerical gradients for checking backward passes (the CS231n names).

Every checker uses centred differences, ``(f(x + h) - f(x - h)) / 2h``, whose
error is O(h^2): with ``h=1e-5`` and float64 inputs, a correct analytic
gradient agrees to a relative error of about 1e-7 or better.
"""
import random
from random import randrange

import numpy as np

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]


def _as_float_array(x, name):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (use float64 for gradient checks), got dtype {x.dtype}"
        )
    if x.dtype != np.float64:
        import warnings

        warnings.warn(
            f"{name} has dtype {x.dtype}; numerical gradients are only accurate in float64",
            stacklevel=3,
        )
    return x


def _scalar_value(value, what):
    """``value`` (a Python/NumPy number or 0-d array/tensor) as a float, else a ValueError."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    if value is None or np.ndim(value) != 0:
        shape = "None" if value is None else f"shape {np.shape(value)}"
        raise ValueError(
            f"{what} needs f to return a scalar, but f returned {shape}; "
            "use eval_numerical_gradient_array for array-valued functions"
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} needs f to return a number, but f returned {type(value).__name__}") from None


def _evaluate_around(f, x, ix, h, keep):
    """``(keep(f(x + h e_ix)), keep(f(x - h e_ix)))``, with ``x[ix]`` restored even if ``f`` or ``keep`` raises.

    x: array (modified in place during the call); ix: index of one entry; keep: turns each value of ``f`` into
    what is kept (a float, or a copied array), before ``x`` changes again: an ``f`` that returns a view of ``x``
    is safe.
    """
    old = x[ix].copy()
    try:
        x[ix] = old + h
        plus = keep(f(x))
        x[ix] = old - h
        minus = keep(f(x))
    finally:
        x[ix] = old
    return plus, minus


def _keep_array(value):
    return np.array(value, dtype=np.float64, copy=True)


def rel_error(x, y):
    """Maximum relative error ``|x - y| / max(1e-8, |x| + |y|)`` over all entries.

    x, y: arrays (or scalars) of the same shape.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(
            f"rel_error: shapes differ, {x.shape} vs {y.shape}: the two arrays should have the same shape "
            "(check the shape of your result, e.g. with check_shape, before comparing values)"
        )
    if x.size == 0:
        return 0.0
    if np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Numerical gradient of a scalar function ``f`` at ``x``.

    x: array of any shape (modified in place during the call, restored after, also when f raises).
    Returns grad, same shape as x, with grad[i] = d f(x) / d x[i].
    """
    x = _as_float_array(x, "x")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        fxph, fxmh = _evaluate_around(f, x, ix, h, lambda value: _scalar_value(value, "eval_numerical_gradient"))
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of ``sum(f(x) * df)`` for an array-valued ``f``.

    x: array of any shape; df: upstream gradient, same shape as f(x).
    Returns grad, same shape as x.
    """
    x = _as_float_array(x, "x")
    df = np.asarray(df)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        pos, neg = _evaluate_around(f, x, ix, h, _keep_array)
        if pos.shape != df.shape:
            raise ValueError(f"f(x) has shape {pos.shape} but df has shape {df.shape}")
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None):
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    x, analytic_grad: arrays of the same shape; f: scalar function of x.
    Prints one line per entry and returns the list of relative errors.
    ``seed`` makes the choice of entries reproducible without touching the
    global ``random`` state.
    """
    x = _as_float_array(x, "x")
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(f"analytic_grad has shape {analytic_grad.shape} but x has shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}): there is no entry to check")
    pick = randrange if seed is None else random.Random(seed).randrange
    errors = []
    for _ in range(num_checks):
        ix = tuple(pick(m) for m in x.shape)
        fxph, fxmh = _evaluate_around(f, x, ix, h, lambda value: _scalar_value(value, "grad_check_sparse"))
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = float(analytic_grad[ix])
        err = abs(grad_numerical - grad_analytic) / max(1e-12, abs(grad_numerical) + abs(grad_analytic))
        errors.append(float(err))
        print(f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, relative error: {err:e}")
    return errors
