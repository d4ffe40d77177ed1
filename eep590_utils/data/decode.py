"""JPEG/PNG bytes -> uint8 pixels, fast: torchvision's libjpeg-turbo on batches, in threads; Pillow as reference.

Two decoders give the same pixels:

- ``decode_pil`` (Pillow, one image at a time) is the reference and the fallback: it decodes PNGs, names the
  file of a broken or wrongly sized image, and decodes everything where torchvision is not installed (then in
  a process pool, as Pillow spends most of its time in Python, holding the GIL);
- ``decode_images`` uses ``torchvision.io.decode_jpeg`` on batches of JPEG bytes in a few threads (its C++
  decoder releases the GIL): about 30 us per 32x32 image and core against Pillow's 75-140 us.

Both wrap libjpeg-turbo with its defaults (integer slow DCT, fancy upsampling), so the pixels are bitwise equal
for 1- and 3-component (grey and YCbCr) JPEGs, which is what CIFAR-10 copies hold: tests/test_data.py checks
it against Pillow on 5,000 real images, ``benchmarks/data_load.py --check`` on all 60,000 of the shared copy.
(4-component CMYK JPEGs, which no CIFAR-10 copy holds, are converted to RGB by each library in its own way.)
A batch torchvision cannot decode (a truncated or corrupt file) is decoded again image by image with Pillow,
as is any image of the wrong size: Pillow either decodes it or raises the ValueError that names the file.
"""
import io
import multiprocessing
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = []

CHUNK = 1000  # images per torchvision batch: a few ms of work, little memory
PARALLEL_MIN_IMAGES = 4000  # below this, Pillow in this thread beats importing torch or starting a pool
JPEG_START = b"\xff\xd8"
_TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def decode_pil(name, blob, size=(32, 32)):
    """One JPEG/PNG (bytes, or None to read the file ``name``) -> uint8 (H, W, 3) RGB, with Pillow.

    size: the expected (width, height); anything else is a ValueError naming ``name``.
    """
    from PIL import Image

    pixels = None
    try:
        if blob is None:
            with open(name, "rb") as f:
                blob = f.read()
        with Image.open(io.BytesIO(blob), formats=("JPEG", "PNG")) as image:
            got = image.size
            if got == size:
                pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # PIL.UnidentifiedImageError and truncated files are OSErrors
        raise ValueError(f"{name}: not a readable JPEG/PNG image ({err})") from None
    if pixels is None:
        raise ValueError(f"{name}: image is {got[0]}x{got[1]} pixels, expected {size[0]}x{size[1]} for CIFAR-10")
    return pixels


def decode_pil_chunk(items, size=(32, 32)):
    """``[(name, bytes or None)]`` -> uint8 (N, H, W, 3), with Pillow, one image after another (pool workers)."""
    out = np.empty((len(items), size[1], size[0], 3), dtype=np.uint8)
    for i, (name, blob) in enumerate(items):
        out[i] = decode_pil(name, blob, size)
    return out


def _read_blob(name, blob):
    if blob is not None:
        return blob
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError as err:
        raise ValueError(f"{name}: not a readable JPEG/PNG image ({err})") from None


def decode_torchvision_chunk(items, size=(32, 32)):
    """``[(name, bytes or None)]`` -> uint8 (N, H, W, 3): JPEGs with torchvision in one batch, the rest with Pillow.

    Any image torchvision rejects or decodes to another size goes to ``decode_pil`` (same pixels, or the named
    ValueError).
    """
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    width, height = size
    out = np.empty((len(items), height, width, 3), dtype=np.uint8)
    blobs = [_read_blob(name, blob) for name, blob in items]
    jpegs = [i for i, blob in enumerate(blobs) if blob[:2] == JPEG_START]
    tensors = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in jpegs]  # bytearray: writable
    try:
        decoded = decode_jpeg(tensors, mode=ImageReadMode.RGB) if tensors else []
    except (RuntimeError, ValueError):  # one bad image fails the batch: Pillow sorts it out image by image
        decoded = [None] * len(jpegs)
    done = set()
    for i, image in zip(jpegs, decoded):
        if image is not None and tuple(image.shape) == (3, height, width):
            out[i] = image.permute(1, 2, 0).numpy()
            done.add(i)
    for i, (name, _) in enumerate(items):
        if i not in done:
            out[i] = decode_pil(name, blobs[i], size)
    return out


def _torchvision_available():
    """Whether ``torchvision.io.decode_jpeg`` can be imported (torchvision deprecated it in 0.29: Pillow takes over
    the day it goes)."""
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except ImportError:
        return False
    return True


def _chunks(items, step):
    return [items[i : i + step] for i in range(0, len(items), step)]


def decode_images(items, size=(32, 32)):
    """``[(name, bytes or None)]`` in order -> one uint8 (N, H, W, 3) array, on all cores when there are many.

    Few images (and torch not imported yet): Pillow here. Many: torchvision batches in threads, or, without
    torchvision, Pillow in a process pool.
    """
    workers = os.cpu_count() or 1
    if len(items) < PARALLEL_MIN_IMAGES and "torch" not in sys.modules:
        return decode_pil_chunk(items, size)
    out = np.empty((len(items), size[1], size[0], 3), dtype=np.uint8)
    chunks = _chunks(items, CHUNK)
    if _torchvision_available():
        # torchvision >= 0.29 warns on every call that its decoders are deprecated (for TorchCodec). Silenced here,
        # in the calling thread: the filter is process-wide while the pool runs, so it covers the workers too.
        with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:
            warnings.filterwarnings("ignore", message=_TORCHVISION_DEPRECATION, category=DeprecationWarning)
            parts = pool.map(lambda chunk: decode_torchvision_chunk(chunk, size), chunks)
            for start, part in zip(range(0, len(items), CHUNK), parts):
                out[start : start + len(part)] = part
        return out
    if workers < 2 or len(items) < PARALLEL_MIN_IMAGES:
        return decode_pil_chunk(items, size)
    try:
        pool = multiprocessing.Pool(workers)
    except (OSError, ValueError, ImportError):  # no /dev/shm, no fork: decode here instead
        return decode_pil_chunk(items, size)
    with pool:
        for start, part in zip(range(0, len(items), CHUNK), pool.imap(decode_pil_chunk, chunks)):
            out[start : start + len(part)] = part  # filled as the chunks arrive: no second full-size copy
    return out
