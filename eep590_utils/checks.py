"""Assertions for visible tests whose failure message says what is wrong.

``check_close(actual, expected, name)`` fails with the shape, the worst entry
and by how much; ``check_shape`` and ``check_type`` fail with what was
expected and what came back. They accept NumPy arrays, torch tensors and
scalars.
"""
import numpy as np

__all__ = ["check_close", "check_shape", "check_type", "check_true"]


def _to_numpy(value):
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu()
        try:
            value = value.numpy()
        except TypeError:  # bfloat16 and the float8 types have no NumPy equivalent
            if not value.is_floating_point():
                raise
            value = value.double().numpy()
    return np.asarray(value)


def _describe(value):
    if value is None:
        return "None"
    kind = type(value).__module__.split(".")[0] + "." + type(value).__name__
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    parts = [kind] + ([f"shape {tuple(shape)}"] if shape is not None else []) + ([f"dtype {dtype}"] if dtype is not None else [])
    return ", ".join(parts)


def _returned_none(name):
    return AssertionError(f"{name} is None: did you forget to return (or assign) the result?")


def check_type(actual, expected_type, name="output"):
    """Fail unless ``actual`` is an instance of ``expected_type`` (a type or tuple of types)."""
    if actual is None:
        raise _returned_none(name)
    if not isinstance(actual, expected_type):
        names = expected_type if isinstance(expected_type, tuple) else (expected_type,)
        wanted = " or ".join(f"{t.__module__.split('.')[0]}.{t.__name__}" for t in names)
        raise AssertionError(f"{name} should be a {wanted}, but it is a {_describe(actual)}")


def check_shape(actual, expected_shape, name="output"):
    """Fail unless ``actual.shape == expected_shape``."""
    if actual is None:
        raise _returned_none(name)
    shape = getattr(actual, "shape", None)
    if shape is None:
        raise AssertionError(f"{name} should be an array of shape {tuple(expected_shape)}, but it is a {_describe(actual)}")
    if tuple(shape) != tuple(expected_shape):
        raise AssertionError(f"{name} has shape {tuple(shape)}, expected {tuple(expected_shape)}")


def check_close(actual, expected, name="output", rtol=1e-5, atol=1e-6):
    """Fail unless ``actual`` matches ``expected`` entry by entry within ``atol + rtol * |expected|``.

    The message names the shape, the number of wrong entries, the worst entry
    (its index, both values and the difference) and any NaN or infinity.
    """
    if actual is None:
        raise _returned_none(name)
    try:
        got = _to_numpy(actual).astype(np.float64)
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{name} should be numeric, but it is a {_describe(actual)} ({err})") from None
    want = _to_numpy(expected).astype(np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{name} has shape {got.shape}, expected {want.shape}")
    bad_values = ~np.isfinite(got) & np.isfinite(want)
    if bad_values.any():
        idx = tuple(int(i) for i in np.argwhere(bad_values)[0])
        raise AssertionError(
            f"{name} has {int(bad_values.sum())} NaN or infinite entries, the first at index {list(idx)} ({got[idx]})"
        )
    # Where the expected value is NaN or infinite, the answer must be the same NaN or infinity.
    special = ~np.isfinite(want)
    special_wrong = special & ~((got == want) | (np.isnan(got) & np.isnan(want)))
    if special_wrong.any():
        idx = tuple(int(i) for i in np.argwhere(special_wrong)[0])
        where = f" at index {list(idx)}" if got.ndim else ""
        raise AssertionError(
            f"{name}: {int(special_wrong.sum())} of {got.size} entries are wrong; the first{where} is "
            f"{got[idx]:.6g} but should be {want[idx]:.6g}"
        )
    tol = atol + rtol * np.abs(np.where(special, 0.0, want))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where `special` masks it anyway
        diff = np.where(special, 0.0, np.abs(got - want))
    wrong = diff > tol
    if wrong.any():
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.where(wrong, diff - tol, -np.inf)), got.shape))
        where = f" at index {list(worst)}" if got.ndim else ""
        raise AssertionError(
            f"{name}: {int(wrong.sum())} of {got.size} entries are wrong; the worst{where} is "
            f"{got[worst]:.6g} but should be {want[worst]:.6g} (off by {diff[worst]:.3g}, tolerance {tol[worst]:.3g})"
        )


def check_true(condition, message):
    """Fail with ``message`` unless ``condition`` holds (a readable ``assert``)."""
    if not condition:
        raise AssertionError(message)
