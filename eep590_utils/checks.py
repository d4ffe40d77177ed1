"""Assertions for visible tests whose failure message says what is wrong.

``check_close(actual, expected, name)`` fails with the shape, the worst entry
and by how much (``max_rel_error=`` compares gradients by their relative error,
as ``rel_error`` does, and still names the worst entry); ``check_shape`` and
``check_type`` fail with what was expected and what came back (a scalar or None
where an array was expected, two axes swapped). They accept NumPy arrays, torch
tensors and scalars.
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


def _wanted(expected_shape):
    """The expected shape in words: 'a 1-D array of 19 values', 'an array of shape (3, 3)'."""
    if len(expected_shape) == 1:
        return f"a 1-D array of {expected_shape[0]} values (shape {expected_shape})"
    if len(expected_shape) == 0:
        return "a single number (shape ())"
    return f"an array of shape {expected_shape}"


def _swapped_axes(shape, expected_shape):
    """(i, j) when ``shape`` is ``expected_shape`` with exactly axes i and j exchanged, else None."""
    if len(shape) != len(expected_shape) or shape == expected_shape:
        return None
    differ = [i for i, (a, b) in enumerate(zip(shape, expected_shape)) if a != b]
    if len(differ) == 2:
        i, j = differ
        if shape[i] == expected_shape[j] and shape[j] == expected_shape[i]:
            return i, j
    return None


def _shape_mismatch(name, actual, shape, expected_shape):
    """The AssertionError for ``actual`` (of shape ``shape``) where ``expected_shape`` was expected."""
    shape, expected_shape = tuple(shape), tuple(expected_shape)
    if shape == () and expected_shape != ():
        value = actual.item() if isinstance(actual, np.ndarray) and actual.dtype == object else actual
        if value is None:
            got = "got None (did you assign the answer?)"
        else:
            try:
                got = f"got a scalar ({float(np.asarray(value)):.6g})"
            except (TypeError, ValueError):
                got = f"got a single {type(value).__name__}"
        return AssertionError(f"{name} should be {_wanted(expected_shape)}, {got}")
    message = f"{name} has shape {shape}, expected {expected_shape}"
    swapped = _swapped_axes(shape, expected_shape)
    if swapped:
        message += f": axes {swapped[0]} and {swapped[1]} are swapped"
        if swapped == (len(shape) - 2, len(shape) - 1):
            message += " (height and width?)"
    elif len(shape) == len(expected_shape) and sorted(shape) == sorted(expected_shape):
        message += ": the same sizes in another order (are axes permuted?)"
    elif len(shape) != len(expected_shape):
        message += f" ({len(shape)}-D instead of {len(expected_shape)}-D)"
    return AssertionError(message)


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
        raise _shape_mismatch(name, actual, shape, expected_shape)


def check_close(actual, expected, name="output", rtol=1e-5, atol=1e-6, *, max_rel_error=None):
    """Fail unless ``actual`` matches ``expected`` entry by entry within ``atol + rtol * |expected|``.

    The message names the shape, the number of wrong entries, the worst entry
    (its index, both values and the difference) and any NaN or infinity.

    With ``max_rel_error`` (for gradient checks: ``check_close(dx, dx_num, "dx", max_rel_error=1e-6)``) an
    entry is wrong when its relative error ``|a - e| / max(1e-8, |a| + |e|)`` (the measure of ``rel_error``)
    exceeds ``max_rel_error``; ``rtol`` and ``atol`` are then not used.
    """
    if actual is None:
        raise _returned_none(name)
    try:
        got = _to_numpy(actual).astype(np.float64)
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{name} should be numeric, but it is a {_describe(actual)} ({err})") from None
    want = _to_numpy(expected).astype(np.float64)
    if got.shape != want.shape:
        raise _shape_mismatch(name, actual, got.shape, want.shape)
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
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where `special` masks it anyway
        diff = np.where(special, 0.0, np.abs(got - want))
        if max_rel_error is None:
            tol = atol + rtol * np.abs(np.where(special, 0.0, want))
            excess, rule = diff - tol, ""
        else:
            rel = np.where(special, 0.0, diff / np.maximum(1e-8, np.abs(got) + np.abs(want)))
            excess, rule = rel - max_rel_error, f" (relative error above {max_rel_error:.0e})"
    wrong = excess > 0
    if wrong.any():
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.where(wrong, excess, -np.inf)), got.shape))
        where = f" at index {list(worst)}" if got.ndim else ""
        measure = f"tolerance {tol[worst]:.3g}" if max_rel_error is None else f"relative error {rel[worst]:.2e}"
        raise AssertionError(
            f"{name}: {int(wrong.sum())} of {got.size} entries are wrong{rule}; the worst{where} is "
            f"{got[worst]:.6g} but should be {want[worst]:.6g} (off by {diff[worst]:.3g}, {measure})"
        )


def check_true(condition, message):
    """Fail with ``message`` unless ``condition`` holds (a readable ``assert``)."""
    if not condition:
        raise AssertionError(message)
