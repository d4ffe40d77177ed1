"""Plain data between a student's kernel and the judges: JSON with tagged numeric arrays.

What crosses from the kernel is never unpickled or evaluated: numbers, strings, booleans, None, lists,
tuples, dicts with text keys, and numeric NumPy arrays / torch tensors (raw bytes, base64, with dtype
and shape checked on receipt). Anything else stays in the kernel: the kernel side replaces it with a
``{"__remote__": id}`` handle the judge may pass back, or fetch as data if it can be encoded.

This module imports only NumPy (torch when it is already loaded), so that both sides can use it.
"""
import base64
import json
import math
import sys

import numpy as np

MIME = "application/vnd.eep590.probe+json"  # what a probe answer is sent as, in a display_data output
MAX_BYTES = 64 * 2**20  # one answer, encoded
MAX_DEPTH = 20
MAX_ITEMS = 100_000
NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex


class WireError(ValueError):
    """Data that is not plain data (or is too big, or malformed), said in words."""


def _torch():
    return sys.modules.get("torch")


def encode(obj, refs=None, depth=0):
    """``obj`` as JSON-able plain data; what cannot be encoded becomes a remote handle when ``refs`` (a
    dict the handles index) is given, else raises :class:`WireError`."""
    if depth > MAX_DEPTH:
        raise WireError("data nested too deeply")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj if abs(obj) < 2**62 else {"__float__": float(obj)}
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, np.generic) and obj.dtype.kind in NUMERIC_KINDS:
        return encode(obj.item(), refs, depth + 1)
    if isinstance(obj, np.ndarray) and obj.dtype.kind in NUMERIC_KINDS:
        return _array(obj, "__ndarray__")
    torch = _torch()
    if torch is not None and isinstance(obj, torch.Tensor):
        array = obj.detach().cpu()
        if array.dtype == torch.bfloat16:
            array = array.float()
        data = _array(array.numpy(), "__tensor__")
        data["dtype_torch"] = str(obj.dtype).replace("torch.", "")
        data["requires_grad"] = bool(obj.requires_grad)
        return data
    if isinstance(obj, (list, tuple)):
        if len(obj) > MAX_ITEMS:
            raise WireError(f"a sequence of {len(obj)} items")
        items = [encode(item, refs, depth + 1) for item in obj]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj) and len(obj) <= MAX_ITEMS:
        return {"__dict__": {k: encode(v, refs, depth + 1) for k, v in obj.items()}}
    if refs is not None:
        refs.append(obj)
        return {"__remote__": len(refs) - 1, "type": type(obj).__name__}
    raise WireError(f"a {type(obj).__name__} is not plain data")


def _array(array, tag):
    array = np.ascontiguousarray(array).reshape(np.shape(array))  # ascontiguousarray makes a 0-d array 1-d
    if array.nbytes > MAX_BYTES:
        raise WireError(f"an array of {array.nbytes} bytes")
    return {tag: base64.b64encode(array.tobytes()).decode("ascii"), "dtype": array.dtype.str, "shape": list(array.shape)}


def decode(data, remote=None, depth=0):
    """Plain data from :func:`encode`'s output, validated; ``remote(id, type)`` builds what a remote
    handle becomes (without it, a handle is an error)."""
    if depth > MAX_DEPTH:
        raise WireError("data nested too deeply")
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        if len(data) > MAX_ITEMS:
            raise WireError(f"a list of {len(data)} items")
        return [decode(item, remote, depth + 1) for item in data]
    if not isinstance(data, dict) or len(data) == 0:
        raise WireError(f"unexpected {type(data).__name__} in the data")
    if "__tuple__" in data:
        return tuple(decode(data["__tuple__"], remote, depth + 1))
    if "__dict__" in data:
        inner = data["__dict__"]
        if not isinstance(inner, dict):
            raise WireError("a malformed dict")
        return {str(k): decode(v, remote, depth + 1) for k, v in inner.items()}
    if "__float__" in data:
        try:
            return float(data["__float__"])
        except (TypeError, ValueError):
            raise WireError("a malformed float") from None
    if "__ndarray__" in data or "__tensor__" in data:
        array = _decode_array(data)
        if "__tensor__" in data:
            import torch

            tensor = torch.from_numpy(array.copy())
            wanted = getattr(torch, str(data.get("dtype_torch", "")), None)
            if isinstance(wanted, torch.dtype) and wanted != tensor.dtype:
                tensor = tensor.to(wanted)
            if data.get("requires_grad") is True and tensor.is_floating_point():
                tensor.requires_grad_(True)
            return tensor
        return array
    if "__remote__" in data:
        if remote is None or not isinstance(data["__remote__"], int):
            raise WireError("a remote object where plain data was expected")
        return remote(data["__remote__"], str(data.get("type", "object"))[:100])
    raise WireError(f"unknown data with keys {sorted(data)[:5]}")


def _decode_array(data):
    tag = "__ndarray__" if "__ndarray__" in data else "__tensor__"
    try:
        dtype = np.dtype(str(data["dtype"]))
        shape = tuple(int(n) for n in data["shape"])
        raw = base64.b64decode(data[tag], validate=True)
    except Exception:
        raise WireError("a malformed array") from None
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or any(n < 0 for n in shape):
        raise WireError(f"an array of dtype {dtype} (only numbers cross)")
    if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise WireError("an array whose bytes do not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()  # writable: a student may update arrays in place


def dumps(obj, refs=None):
    text = json.dumps(encode(obj, refs))
    if len(text) > MAX_BYTES:
        raise WireError(f"an answer of {len(text)} bytes")
    return text


def loads(text, remote=None):
    if not isinstance(text, str) or len(text) > MAX_BYTES:
        raise WireError("an answer that is not text, or too large")
    try:
        data = json.loads(text)
    except ValueError:
        raise WireError("an answer that is not JSON") from None
    return decode(data, remote)
