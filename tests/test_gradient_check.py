"""Numerical gradients (eep590_utils.gradient_check) against analytic gradients.

Tolerances: the checkers use centred differences with h = 1e-5 in float64. The
truncation error is O(h^2) times the third derivative (~1e-10 for these smooth
functions of O(1) inputs) and the roundoff error is about eps * |f| / h
(~1e-16 / 1e-5 ~ 1e-11). Gradient entries are O(0.1 .. 1), so a correct analytic
gradient agrees to a relative error of ~1e-9 (measured: 5e-12 .. 9e-10 on these
examples). A threshold of 1e-7 leaves a factor of 100 for unlucky entries and is
still six orders of magnitude below what a real bug produces (a missing factor 2
gives 1/3, a transposed matrix or a missing 1/N gives > 0.1).
"""
import random
import warnings

import numpy as np
import pytest

from eep590_utils import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error

CORRECT = 1e-7  # see the module docstring
WRONG = 0.1  # what the usual mistakes produce at the least


# ------------------------------------------------------------------------------ reference functions


def affine_forward(x, w, b):
    return x @ w + b


def affine_backward(dout, x, w):
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def softmax_loss(scores, y):
    """Mean cross-entropy of (N, C) scores; stable log-softmax."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean()


def softmax_loss_grad(scores, y):
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(y)), y] -= 1
    return probs / len(y)


EPS = 1e-5


def normalize_forward(x, gamma, beta):
    """Batchnorm-like normalisation of (N, D) over the batch axis, then scale and shift."""
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + EPS) * gamma + beta


def normalize_backward(dout, x, gamma):
    n = x.shape[0]
    inv_std = 1.0 / np.sqrt(x.var(axis=0) + EPS)
    xhat = (x - x.mean(axis=0)) * inv_std
    dxhat = dout * gamma
    dx = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


@pytest.fixture(params=[0, 1, 2], ids=lambda s: f"seed{s}")
def rng(request):
    return np.random.default_rng(request.param)


# ---------------------------------------------------------------------------- correct gradients pass


def test_affine_gradients_match(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((4, 3))
    dx, dw, db = affine_backward(dout, x, w)
    assert rel_error(eval_numerical_gradient_array(lambda v: affine_forward(v, w, b), x, dout), dx) < CORRECT
    assert rel_error(eval_numerical_gradient_array(lambda v: affine_forward(x, v, b), w, dout), dw) < CORRECT
    assert rel_error(eval_numerical_gradient_array(lambda v: affine_forward(x, w, v), b, dout), db) < CORRECT


def test_softmax_loss_gradient_matches(rng):
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)
    numerical = eval_numerical_gradient(lambda s: softmax_loss(s, y), scores)
    assert numerical.shape == scores.shape
    assert rel_error(numerical, softmax_loss_grad(scores, y)) < CORRECT


def test_normalization_gradients_match(rng):
    x = 2.0 * rng.standard_normal((8, 3)) + 1.0
    gamma, beta, dout = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((8, 3))
    dx, dgamma, dbeta = normalize_backward(dout, x, gamma)
    assert rel_error(eval_numerical_gradient_array(lambda v: normalize_forward(v, gamma, beta), x, dout), dx) < CORRECT
    assert rel_error(eval_numerical_gradient_array(lambda v: normalize_forward(x, v, beta), gamma, dout), dgamma) < CORRECT
    assert rel_error(eval_numerical_gradient_array(lambda v: normalize_forward(x, gamma, v), beta, dout), dbeta) < CORRECT


def test_grad_check_sparse_accepts_correct_gradient(rng, capsys):
    scores, y = rng.standard_normal((5, 3)), rng.integers(0, 3, size=5)
    errors = grad_check_sparse(lambda s: softmax_loss(s, y), scores, softmax_loss_grad(scores, y), num_checks=7, seed=0)
    assert len(errors) == 7
    assert max(errors) < CORRECT
    assert capsys.readouterr().out.count("relative error") == 7


# ------------------------------------------------------------------------------ wrong gradients fail


def test_missing_factor_two_is_caught(rng):
    x = rng.standard_normal((3, 4))
    numerical = eval_numerical_gradient(lambda v: np.sum(v**2), x)
    assert rel_error(numerical, 2 * x) < CORRECT
    assert rel_error(numerical, x) == pytest.approx(1 / 3, rel=1e-6)  # |2x - x| / (|2x| + |x|)


def test_transposed_weight_gradient_is_caught(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    numerical = eval_numerical_gradient_array(lambda v: affine_forward(x, v, b), w, dout)
    _, dw, _ = affine_backward(dout, x, w)
    assert rel_error(numerical, dw) < CORRECT
    assert rel_error(numerical, dw.T) > WRONG


def test_missing_mean_in_softmax_gradient_is_caught(rng):
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)
    numerical = eval_numerical_gradient(lambda s: softmax_loss(s, y), scores)
    assert rel_error(numerical, softmax_loss_grad(scores, y) * len(y)) > WRONG  # forgot the 1/N


def test_normalization_without_mean_terms_is_caught(rng):
    """The classic mistake: backpropagating only through xhat's numerator, dx = dxhat / std."""
    x = 2.0 * rng.standard_normal((8, 3)) + 1.0
    gamma, beta, dout = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((8, 3))
    numerical = eval_numerical_gradient_array(lambda v: normalize_forward(v, gamma, beta), x, dout)
    naive = dout * gamma / np.sqrt(x.var(axis=0) + EPS)
    assert rel_error(numerical, naive) > WRONG


def test_grad_check_sparse_reports_wrong_gradient(rng, capsys):
    x = rng.standard_normal((4, 4))
    errors = grad_check_sparse(lambda v: np.sum(v**2), x, x, num_checks=5, seed=1)
    assert min(errors) == pytest.approx(1 / 3, rel=1e-6)


# ------------------------------------------------------------------------------------ behaviour


def test_input_is_restored_after_the_check(rng):
    x = rng.standard_normal((3, 3))
    before = x.copy()
    eval_numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    eval_numerical_gradient_array(np.tanh, x, np.ones((3, 3)))
    grad_check_sparse(lambda v: np.sum(v**3), x, 3 * x**2, num_checks=3, seed=0)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_of_nonlinear_function(rng):
    x = rng.standard_normal((2, 3))
    assert rel_error(eval_numerical_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x)) < CORRECT
    assert rel_error(eval_numerical_gradient_array(np.tanh, x, np.ones_like(x)), 1 - np.tanh(x) ** 2) < CORRECT


def test_zero_dimensional_and_torch_scalar_outputs(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(4)
    grad = eval_numerical_gradient(lambda v: torch.tensor(v).pow(2).sum(), x)  # f returns a 0-d tensor
    assert rel_error(grad, 2 * x) < CORRECT
    grad = eval_numerical_gradient(lambda v: np.array(np.sum(v**2)), x)  # a 0-d array
    assert rel_error(grad, 2 * x) < CORRECT


def test_grad_check_sparse_seed_is_reproducible_and_local(rng, capsys):
    x = rng.standard_normal((6, 7))
    wrong = x * rng.uniform(0.5, 2.0, size=x.shape)  # a different error at every entry
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    first = grad_check_sparse(lambda v: np.sum(v**2), x, wrong, num_checks=6, seed=5)
    second = grad_check_sparse(lambda v: np.sum(v**2), x, wrong, num_checks=6, seed=5)
    assert first == second
    assert random.random() == expected_next, "grad_check_sparse(seed=...) must not reseed the global random module"


# ----------------------------------------------------------------------------------------- rel_error


def test_rel_error_values():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(1.0, 3.0) == pytest.approx(0.5)
    assert rel_error(np.array([1.0, 10.0]), np.array([1.0, 12.0])) == pytest.approx(2 / 22)
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    assert np.isnan(rel_error(np.array([np.nan]), np.array([1.0])))


# ------------------------------------------------------------------------------------- bad input


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="floating-point.*int"):
        eval_numerical_gradient(lambda v: float(np.sum(v)), np.arange(4))
    with pytest.raises(TypeError, match="floating-point"):
        eval_numerical_gradient_array(lambda v: v, np.arange(4), np.ones(4))
    with pytest.raises(TypeError, match="floating-point"):
        grad_check_sparse(lambda v: float(np.sum(v)), np.arange(4), np.ones(4))


def test_non_array_input_is_rejected():
    with pytest.raises(TypeError, match="numpy array.*list"):
        eval_numerical_gradient(lambda v: 0.0, [1.0, 2.0])


def test_float32_input_warns():
    with pytest.warns(UserWarning, match="float32"):
        eval_numerical_gradient(lambda v: float(np.sum(v)), np.ones(3, dtype=np.float32))


def test_non_scalar_function_is_rejected():
    with pytest.raises(ValueError, match=r"scalar.*shape \(3,\).*eval_numerical_gradient_array"):
        eval_numerical_gradient(lambda v: v * 2, np.ones(3))
    with pytest.raises(ValueError, match="scalar.*None"):
        eval_numerical_gradient(lambda v: None, np.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        grad_check_sparse(lambda v: v * 2, np.ones(3), np.ones(3), num_checks=1)


def test_shape_mismatches_are_rejected():
    with pytest.raises(ValueError, match=r"f\(x\) has shape \(3,\) but df has shape \(2,\)"):
        eval_numerical_gradient_array(lambda v: v * 2, np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"analytic_grad has shape \(2,\) but x has shape \(3,\)"):
        grad_check_sparse(lambda v: float(np.sum(v)), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"shapes differ, \(3,\) vs \(2,\)"):
        rel_error(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"should have the same shape \(check the shape of your result"):
        rel_error(np.ones((3, 2)), np.ones((2, 3)))


def test_empty_input_to_sparse_check_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        grad_check_sparse(lambda v: 0.0, np.ones((0, 3)), np.ones((0, 3)))


def test_no_warning_for_float64():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eval_numerical_gradient(lambda v: float(np.sum(v)), np.ones(2))


class Boom(Exception):
    pass


@pytest.mark.parametrize("checker", ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse"])
@pytest.mark.parametrize("fail_on_call", [1, 2, 5])
def test_x_is_restored_when_f_raises(checker, fail_on_call):
    """An ``f`` that raises (on x + h, on x - h, or at a later entry) leaves x exactly as it was."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    before = x.copy()
    calls = []

    def f(z):
        calls.append(1)
        if len(calls) == fail_on_call:
            raise Boom
        return np.sum(z**2)

    with pytest.raises(Boom):
        if checker == "eval_numerical_gradient":
            eval_numerical_gradient(f, x)
        elif checker == "eval_numerical_gradient_array":
            eval_numerical_gradient_array(lambda z: z * f(z), x, np.ones_like(x))
        else:
            grad_check_sparse(f, x, 2 * x, num_checks=5, seed=0)
    np.testing.assert_array_equal(x, before)


def test_x_is_restored_when_f_returns_a_bad_value():
    """The value check fails after f changed x: x is restored all the same."""
    x = np.arange(4.0)
    with pytest.raises(ValueError, match="scalar"):
        eval_numerical_gradient(lambda z: z, x)
    np.testing.assert_array_equal(x, np.arange(4.0))
