"""The visible-test assertions (eep590_utils.checks): they pass on right answers and say what is wrong otherwise."""
import re

import numpy as np
import pytest
import torch

from eep590_utils import check_close, check_shape, check_true, check_type


def failure(fn, *args, **kwargs):
    """The AssertionError message of ``fn(*args, **kwargs)`` (the test fails if it does not raise)."""
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------- check_close


@pytest.mark.parametrize(
    "actual",
    [
        np.arange(6.0).reshape(2, 3),
        torch.arange(6.0).reshape(2, 3),
        torch.arange(6.0, requires_grad=True).reshape(2, 3),  # needs detach
        torch.arange(6, dtype=torch.int64).reshape(2, 3),
        torch.arange(6.0).reshape(2, 3).to(torch.bfloat16),  # no NumPy dtype
        torch.arange(6.0).reshape(2, 3).half(),
        [[0, 1, 2], [3, 4, 5]],
    ],
    ids=["numpy", "torch", "torch-grad", "torch-int", "bfloat16", "float16", "list"],
)
@pytest.mark.parametrize("expected_kind", ["numpy", "torch"])
def test_close_accepts_numpy_torch_and_lists(actual, expected_kind):
    expected = np.arange(6.0).reshape(2, 3)
    check_close(actual, expected if expected_kind == "numpy" else torch.from_numpy(expected))


def test_close_accepts_scalars_within_tolerance():
    check_close(1.0 + 5e-7, 1.0)
    check_close(torch.tensor(2.0), 2.0)
    check_close(1000.0 * (1 + 1e-6), 1000.0)  # relative tolerance 1e-5
    check_close(1.05, 1.0, rtol=0.1)


def test_close_names_index_values_and_difference_of_one_wrong_entry():
    expected = np.zeros((2, 3))
    actual = expected.copy()
    actual[1, 2] = 0.5
    message = failure(check_close, actual, expected, name="dx")
    assert message.startswith("dx")
    assert "1 of 6 entries" in message
    assert "index [1, 2]" in message
    assert "is 0.5 but should be 0" in message
    assert "off by 0.5" in message


def test_close_reports_the_worst_of_several_wrong_entries():
    expected = np.ones(5)
    actual = np.array([1.0, 1.1, 3.0, 1.0, 0.8])
    message = failure(check_close, actual, expected)
    assert "3 of 5 entries" in message
    assert "index [2]" in message and "is 3 but should be 1" in message and "off by 2" in message


def test_close_on_torch_tensor_names_index():
    actual = torch.zeros(3, 4)
    actual[2, 1] = -7.0
    message = failure(check_close, actual, torch.zeros(3, 4), name="out")
    assert "index [2, 1]" in message and "-7" in message


def test_close_scalar_message():
    message = failure(check_close, 3.0, 2.0, name="loss")
    assert re.search(r"loss: 1 of 1 entries are wrong; the worst is 3 but should be 2 \(off by 1,", message)


def test_close_none_says_forgot_to_return():
    message = failure(check_close, None, np.zeros(3), name="scores")
    assert "scores is None" in message and "return" in message


def test_close_wrong_shape_names_both_shapes():
    message = failure(check_close, np.zeros((3, 2)), np.zeros((2, 3)), name="out")
    assert "out has shape (3, 2), expected (2, 3)" in message


def test_close_non_numeric_says_so():
    message = failure(check_close, "banana", 1.0, name="answer")
    assert "answer should be numeric" in message and "str" in message
    message = failure(check_close, {"a": 1}, 1.0)
    assert "should be numeric" in message and "dict" in message


def test_close_nan_in_answer_is_named():
    actual = np.array([[1.0, 2.0], [np.nan, 4.0]])
    message = failure(check_close, actual, np.array([[1.0, 2.0], [3.0, 4.0]]), name="h")
    assert "NaN or infinite" in message and "index [1, 0]" in message and "nan" in message
    message = failure(check_close, torch.tensor([np.inf, 1.0]), np.array([0.0, 1.0]))
    assert "index [0]" in message and "inf" in message


def test_close_expected_nan_and_inf_must_be_matched():
    check_close(np.array([1.0, np.nan, np.inf]), np.array([1.0, np.nan, np.inf]))
    message = failure(check_close, np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert "index [1]" in message and "is 2 but should be nan" in message
    assert "should be -inf" in failure(check_close, np.inf, -np.inf)
    assert "should be inf" in failure(check_close, np.nan, np.inf)


def test_close_tolerances_are_respected():
    check_close(np.array([1.0]), np.array([1.5]), atol=0.6)
    message = failure(check_close, np.array([1.0]), np.array([1.5]), atol=0.4, rtol=0.0)
    assert "tolerance 0.4" in message


# ----------------------------------------------------------------------------------------- check_shape


def test_shape_passes_for_arrays_tensors_and_sizes():
    check_shape(np.zeros((2, 3)), (2, 3))
    check_shape(torch.zeros(2, 3), [2, 3])
    check_shape(torch.zeros(2, 3), torch.Size([2, 3]))


def test_shape_messages():
    assert "x is None" in failure(check_shape, None, (2,), name="x")
    assert "out has shape (3, 2), expected (2, 3)" in failure(check_shape, torch.zeros(3, 2), (2, 3), name="out")
    message = failure(check_shape, [1, 2], (2,), name="out")
    assert "should be an array of shape (2,)" in message and "builtins.list" in message


# ------------------------------------------------------------------------------------------ check_type


def test_type_passes():
    check_type(np.zeros(2), np.ndarray)
    check_type(torch.zeros(2), (np.ndarray, torch.Tensor))
    check_type(3, int)


def test_type_messages():
    assert "model is None" in failure(check_type, None, torch.nn.Module, name="model")
    message = failure(check_type, np.zeros((2, 2)), torch.Tensor, name="out")
    assert "out should be a torch.Tensor" in message
    assert "numpy.ndarray" in message and "shape (2, 2)" in message and "float64" in message
    message = failure(check_type, "x", (np.ndarray, torch.Tensor))
    assert "numpy.ndarray or torch.Tensor" in message and "builtins.str" in message


# ------------------------------------------------------------------------------------------ check_true


def test_true():
    check_true(True, "never shown")
    check_true(np.all(np.ones(3) > 0), "never shown")
    assert failure(check_true, False, "the loss should decrease") == "the loss should decrease"


def test_shape_of_a_scalar_or_none_where_an_array_is_expected():
    """A scalar (or None wrapped by np.asarray) where an array was expected: say so, not 'shape ()'."""
    message = failure(check_shape, np.asarray(0.5), (19,), name="y_rect")
    assert message == "y_rect should be a 1-D array of 19 values (shape (19,)), got a scalar (0.5)"
    message = failure(check_shape, np.asarray(None), (19,), name="y_rect")
    assert message.startswith("y_rect should be a 1-D array of 19 values") and "got None" in message
    message = failure(check_shape, np.float64(2.0), (3, 3), name="y")
    assert "y should be an array of shape (3, 3), got a scalar (2)" in message
    message = failure(check_close, 3.0, np.zeros(19), name="y_rect")
    assert "y_rect should be a 1-D array of 19 values" in message and "got a scalar (3)" in message
    message = failure(check_close, np.asarray(None), np.zeros(4), name="g")
    assert "g should be a 1-D array of 4 values" in message and "got None" in message


def test_shape_names_swapped_axes():
    message = failure(check_shape, np.zeros((3, 2, 2, 3)), (3, 2, 3, 2), name="dw")
    assert message == "dw has shape (3, 2, 2, 3), expected (3, 2, 3, 2): axes 2 and 3 are swapped (height and width?)"
    message = failure(check_close, np.zeros((2, 3, 1)), np.zeros((3, 2, 1)), name="out")
    assert "out has shape (2, 3, 1), expected (3, 2, 1): axes 0 and 1 are swapped" in message
    message = failure(check_shape, np.zeros((4, 2, 3)), (2, 3, 4), name="x")
    assert "another order" in message
    assert "(1-D instead of 2-D)" in failure(check_shape, np.zeros(3), (3, 3), name="x")


def test_close_max_rel_error_names_the_worst_entry():
    """The gradient-check mode: relative errors as rel_error measures them, the worst entry named."""
    numeric = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    check_close(numeric * (1 + 1e-9), numeric, "dx", max_rel_error=1e-6)
    check_close(np.zeros(3), np.full(3, 1e-15), "db", max_rel_error=1e-6)  # below the 1e-8 floor
    analytic = numeric.copy()
    analytic[2, 1] *= 1.5
    analytic[0, 3] *= 1.01
    message = failure(check_close, analytic, numeric, "dx", max_rel_error=1e-6)
    assert message.startswith("dx: 2 of 12 entries are wrong (relative error above 1e-06)")
    assert "the worst at index [2, 1]" in message and "relative error 2.00e-01" in message
    assert f"is {analytic[2, 1]:.6g} but should be {numeric[2, 1]:.6g}" in message and "off by" in message
    # The shape is checked first, with both shapes named.
    message = failure(check_close, np.zeros((4, 3)), numeric, "dx", max_rel_error=1e-6)
    assert "dx has shape (4, 3), expected (3, 4)" in message
