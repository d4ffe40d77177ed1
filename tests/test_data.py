"""eep590_utils.data: where the data come from, what the arrays hold, the cache, the loaders, the errors.

Every test gets an empty temporary cache (EEP590_CACHE) except ``test_full_cifar10_from_the_shared_archive``,
the one test that uses (and may fill) the real cache. Decoding tests use small archives and folders built in
tmp_path from real CIFAR-10 JPEGs; expected pixels come from Pillow directly and expected orders from the
documented rule (sorted by class and file name, then a fixed permutation with seed 0).
"""
import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eep590_utils import data
from eep590_utils.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    MNIST_MEAN,
    MNIST_STD,
    ArrayImageDataset,
    DatasetNotFoundError,
    MNISTOfflineSplitWarning,
    cifar10_loaders,
    get_cifar10_data,
    load_cifar10,
    load_mnist,
    mnist_loaders,
)

REAL_CACHE = os.environ.get("EEP590_CACHE")  # before the autouse fixture below replaces it
TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2  # the small archives: 40 training and 20 test images


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    """An empty cache directory for each test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EEP590_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def cifar_jpegs(shared_data):
    """``{(split, class, filename): jpeg bytes}``: the first few real images of each class and split."""
    wanted = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    found = {}
    with tarfile.open(shared_data / "cifar10" / "cifar10-jpg.tar.gz", "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3 and int(parts[2].split(".")[0]) < wanted[parts[0]]:
                found[tuple(parts)] = archive.extractfile(member).read()
    assert len(found) == 10 * (TRAIN_PER_CLASS + TEST_PER_CLASS)
    return found


def write_archive(path, images):
    """A .tar.gz of ``{(split, class, filename): bytes}`` in the image-folder layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for (split, cls, name), blob in sorted(images.items()):
            info = tarfile.TarInfo(f"{split}/{cls}/{name}")
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return path


def write_folders(base, images):
    for (split, cls, name), blob in images.items():
        (base / split / cls).mkdir(parents=True, exist_ok=True)
        (base / split / cls / name).write_bytes(blob)
    return base


def decode(blob):
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))


def expected_split(images, split):
    """(X, y) for one split by the documented rule, decoded with Pillow."""
    keys = sorted((CIFAR10_CLASSES.index(cls), name) for (s, cls, name) in images if s == split)
    order = np.random.default_rng(0).permutation(len(keys))
    keys = [keys[i] for i in order]
    X = np.stack([decode(images[(split, CIFAR10_CLASSES[label], name)]) for label, name in keys])
    return X, np.array([label for label, _ in keys], dtype=np.int64)


@pytest.fixture
def small_archive_root(tmp_path, cifar_jpegs):
    root = tmp_path / "data"
    write_archive(root / "cifar10" / "cifar10-jpg.tar.gz", cifar_jpegs)
    return root


def assert_same_arrays(got, want):
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------------------- CIFAR-10


@pytest.mark.slow
def test_full_cifar10_from_the_shared_archive(monkeypatch, shared_data, cifar_jpegs):
    """The one test on the real cache: the whole shared archive, decoded once per machine and then cached."""
    if REAL_CACHE is None:
        monkeypatch.delenv("EEP590_CACHE")
    else:
        monkeypatch.setenv("EEP590_CACHE", REAL_CACHE)
    X_train, y_train, X_test, y_test = load_cifar10(root=shared_data)
    assert X_train.shape == (50000, 32, 32, 3) and X_test.shape == (10000, 32, 32, 3)
    assert X_train.dtype == X_test.dtype == np.uint8 and y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train, minlength=10).tolist() == [5000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    assert len(set(y_train[:50].tolist())) >= 8, "the first images should mix classes, not be all airplanes"
    # Pixel-exact against Pillow for the images among the first few of their class (names 0000.jpg ...):
    # the k-th sorted image (class k // 5000, file k % 5000) sits where the seed-0 permutation puts it.
    order = np.random.default_rng(0).permutation(50000)
    checked = 0
    for position in np.flatnonzero(order % 5000 < TRAIN_PER_CLASS):
        k = int(order[position])
        blob = cifar_jpegs[("train", CIFAR10_CLASSES[k // 5000], f"{k % 5000:04d}.jpg")]
        np.testing.assert_array_equal(X_train[position], decode(blob))
        assert y_train[position] == k // 5000
        checked += 1
    assert checked == 10 * TRAIN_PER_CLASS
    cache = Path(REAL_CACHE).expanduser() if REAL_CACHE else Path.home() / ".cache" / "eep590"
    assert data.cache_dir() == cache
    cached = list(cache.glob("cifar10-*.npz"))
    assert cached, f"no cached arrays in {cache}"
    key = data.cache.fingerprint("archive", shared_data / "cifar10" / "cifar10-jpg.tar.gz")
    with np.load(cache / f"cifar10-{key}.npz") as npz:  # what the next load reads is what this one returned
        for name, array in zip(data.cache.ARRAY_NAMES, (X_train, y_train, X_test, y_test)):
            np.testing.assert_array_equal(npz[name], array)


def test_small_archive_decodes_to_the_documented_order_and_pixels(small_archive_root, cifar_jpegs):
    X_train, y_train, X_test, y_test = load_cifar10(root=small_archive_root)
    assert_same_arrays((X_train, y_train, X_test, y_test),
                       (*expected_split(cifar_jpegs, "train"), *expected_split(cifar_jpegs, "test")))
    assert np.bincount(y_train).tolist() == [TRAIN_PER_CLASS] * 10


def test_second_load_reads_the_cache_without_decoding(small_archive_root, tmp_cache, monkeypatch):
    first = load_cifar10(root=small_archive_root)
    assert len(list(tmp_cache.glob("cifar10-*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds the arrays")

    monkeypatch.setattr(data.read, "decode_images", no_decoding)
    assert_same_arrays(load_cifar10(root=small_archive_root), first)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_file_is_rebuilt(small_archive_root, tmp_cache, damage):
    first = load_cifar10(root=small_archive_root)
    (cache_file,) = tmp_cache.glob("cifar10-*.npz")
    content = cache_file.read_bytes()
    cache_file.write_bytes({"garbage": b"not an npz file" * 100, "truncated": content[: len(content) // 2],
                            "empty": b""}[damage])
    assert_same_arrays(load_cifar10(root=small_archive_root), first)
    with np.load(cache_file) as npz:  # rewritten whole
        np.testing.assert_array_equal(npz["X_train"], first[0])


def test_cache_is_keyed_by_the_source(small_archive_root, cifar_jpegs, tmp_cache):
    load_cifar10(root=small_archive_root)
    fewer = {key: blob for key, blob in cifar_jpegs.items() if key[2] != "0000.jpg"}
    archive = write_archive(small_archive_root / "cifar10" / "cifar10-jpg.tar.gz", fewer)
    os.utime(archive, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    X_train, _, X_test, _ = load_cifar10(root=small_archive_root)
    assert len(X_train) == 10 * (TRAIN_PER_CLASS - 1) and len(X_test) == 10 * (TEST_PER_CLASS - 1)
    assert len(list(tmp_cache.glob("cifar10-*.npz"))) == 2


def test_cache_location_follows_the_environment_variable(small_archive_root, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere" / "cache"
    monkeypatch.setenv("EEP590_CACHE", str(elsewhere))
    load_cifar10(root=small_archive_root)
    assert len(list(elsewhere.glob("cifar10-*.npz"))) == 1


@pytest.mark.parametrize("layout", ["root/cifar10/train", "root/train"])
def test_extracted_image_folders_give_the_same_arrays(tmp_path, cifar_jpegs, layout, small_archive_root):
    root = tmp_path / "folders"
    write_folders(root / "cifar10" if layout == "root/cifar10/train" else root, cifar_jpegs)
    assert_same_arrays(load_cifar10(root=root), load_cifar10(root=small_archive_root))


def test_png_images_are_read(tmp_path, cifar_jpegs):
    pngs = {}
    for (split, cls, name), blob in cifar_jpegs.items():
        out = io.BytesIO()
        Image.open(io.BytesIO(blob)).save(out, format="PNG")
        pngs[(split, cls, name.replace(".jpg", ".png"))] = out.getvalue()
    X_train, y_train, _, _ = load_cifar10(root=write_folders(tmp_path / "png", pngs))
    want_X, want_y = expected_split(pngs, "train")
    np.testing.assert_array_equal(X_train, want_X)
    np.testing.assert_array_equal(y_train, want_y)


# ------------------------------------------------------------------------------ fast decoding, reading, caching


@pytest.fixture(scope="module")
def archive_sample(shared_data):
    """``[(name, jpeg bytes)]``: every 12th image of the shared archive (5000 of 60,000, all classes and splits)."""
    raw = gzip.decompress((shared_data / "cifar10" / "cifar10-jpg.tar.gz").read_bytes())
    files = data.read.tar_files(raw)
    assert len(files) == 60000
    return files[::12]


def test_torchvision_batches_decode_bitwise_like_pillow(archive_sample):
    """The fast path (torchvision's libjpeg-turbo, batches in threads) gives Pillow's pixels exactly.

    Both libraries wrap libjpeg-turbo with the same defaults (integer DCT, fancy upsampling), so equality is
    exact, not approximate; all 60,000 images of the shared copy agree (benchmarks/data_load.py --check).
    """
    assert len(archive_sample) >= data.decode.PARALLEL_MIN_IMAGES  # decode_images takes the threaded path
    fast = data.decode.decode_images(archive_sample)
    reference = data.decode.decode_pil_chunk(archive_sample)
    assert fast.shape == (len(archive_sample), 32, 32, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"sample/bad\.jpg: not a readable JPEG/PNG image"),
    ("garbage", r"sample/bad\.jpg: not a readable JPEG/PNG image"),
    ("28x28", r"sample/bad\.jpg: image is 28x28 pixels, expected 32x32"),
])
def test_torchvision_batch_with_a_bad_image_names_it(archive_sample, damage, message):
    blob = archive_sample[0][1]
    if damage == "28x28":
        out = io.BytesIO()
        Image.new("RGB", (28, 28)).save(out, format="JPEG")
        bad = out.getvalue()
    else:
        bad = blob[: len(blob) // 2] if damage == "truncated" else b"\xff\xd8 not a jpeg"
    items = [(name, blob) for name, blob in archive_sample[:20]] + [("sample/bad.jpg", bad)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 deprecates its decoders
        with pytest.raises(ValueError, match=message):
            data.decode.decode_torchvision_chunk(items)


def test_tar_reader_agrees_with_tarfile(tmp_path, cifar_jpegs):
    """The direct header walk returns tarfile's members; pax long names and plain .tar files work too."""
    long_name = ("train", "cat", "x" * 120 + ".jpg")  # over ustar's 100 characters: a pax header
    images = {**cifar_jpegs, long_name: cifar_jpegs[("train", "cat", "0000.jpg")]}
    gz = write_archive(tmp_path / "a" / "cifar10-jpg.tar.gz", cifar_jpegs)
    pax = write_archive(tmp_path / "b" / "cifar10-jpg.tar.gz", images)
    plain = tmp_path / "c" / "cifar10-jpg.tar.gz"  # the loader does not go by the suffix
    plain.parent.mkdir()
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    for path in (gz, pax, plain):
        want = {split: sorted(entries) for split, entries in data.read.archive_items(path).items()}
        with tarfile.open(path) as archive:
            names = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}
        got = {(split, CIFAR10_CLASSES[label], filename): blob
               for split, entries in want.items() for label, filename, _, blob in entries}
        assert got == {tuple(name.split("/")): blob for name, blob in names.items()}
    raw = plain.read_bytes()
    assert data.read.tar_files(raw) == [(n, b) for n, b in data.read._tarfile_files(plain)]
    assert data.read.tar_files(gzip.decompress(pax.read_bytes())) is None  # pax header: left to tarfile
    damaged = bytearray(raw)
    damaged[0] ^= 1  # a bad checksum in the first header
    assert data.read.tar_files(bytes(damaged)) is None


CONCURRENT_LOAD = """
import sys
from eep590_utils.data import load_cifar10
X_train, y_train, X_test, y_test = load_cifar10(root=sys.argv[1])
print(X_train.shape[0], int(X_train.sum()))
"""


def test_two_processes_decoding_at_once_leave_one_whole_cache(small_archive_root, tmp_cache):
    """Two cold loads race on the same cache: both succeed, one whole .npz is left and no temporary file."""
    env = dict(os.environ, EEP590_CACHE=str(tmp_cache))
    runs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_LOAD, str(small_archive_root)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    assert [p.name for p in tmp_cache.iterdir() if not p.name.startswith("cifar10-")] == []
    (cache_file,) = tmp_cache.glob("cifar10-*.npz")
    assert_same_arrays(data.cache.read_cache(cache_file, lambda *arrays: None), load_cifar10(root=small_archive_root))


def test_cache_dir_and_data_dirs_follow_the_environment(tmp_path, monkeypatch):
    here, shared, cache = tmp_path / "work", tmp_path / "shared", tmp_path / "cache"
    for folder in (here / "data", shared, cache):
        folder.mkdir(parents=True)
    monkeypatch.chdir(here)
    monkeypatch.setenv("EEP590_DATA", str(shared))
    monkeypatch.setenv("EEP590_CACHE", str(cache))
    assert data.cache_dir() == cache
    assert data.data_dirs() == [shared, here / "data", cache]
    monkeypatch.setenv("EEP590_DATA", str(tmp_path / "missing"))  # only existing folders are listed
    monkeypatch.delenv("EEP590_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "eep590"
    assert data.data_dirs()[0] == here / "data"
    assert data._cache_dir is data.cache_dir  # alias kept for eep590_utils/grading (deprecated)


def write_cifar_pickles(directory, batches):
    """torchvision's cifar-10-batches-py layout: pickled dicts of uint8 (N, 3072) 'data' and 'labels'."""
    directory.mkdir(parents=True)
    for name, (images, labels) in zip(data.constants.CIFAR_PICKLES, batches):
        with open(directory / name, "wb") as f:
            pickle.dump({"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), "labels": list(labels)}, f)


def test_torchvision_pickles_are_read_in_order_and_preferred(tmp_path, small_archive_root):
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 3)) for _ in range(6)]
    write_cifar_pickles(small_archive_root / "cifar-10-batches-py", batches)  # beside the archive: pickles win
    X_train, y_train, X_test, y_test = load_cifar10(root=small_archive_root)
    np.testing.assert_array_equal(X_train, np.concatenate([images for images, _ in batches[:5]]))
    np.testing.assert_array_equal(y_train, np.concatenate([labels for _, labels in batches[:5]]))
    np.testing.assert_array_equal(X_test, batches[5][0])
    assert y_test.dtype == np.int64 and y_test.tolist() == batches[5][1].tolist()


def test_incomplete_or_corrupt_pickles_are_named(tmp_path):
    rng = np.random.default_rng(2)
    batches = [(rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), [0, 1]) for _ in range(6)]
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", batches)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=r"cifar-10-batches-py is incomplete: missing \['data_batch_3'\]"):
        load_cifar10(root=tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match=r"data_batch_3: not a readable CIFAR-10 batch pickle"):
        load_cifar10(root=tmp_path)


def test_truncated_archive_is_named(tmp_path, small_archive_root):
    archive = small_archive_root / "cifar10" / "cifar10-jpg.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cifar10-jpg\.tar\.gz: not a readable \.tar\.gz archive, or truncated"):
        load_cifar10(root=small_archive_root)


def test_archive_that_is_not_gzip_is_named(tmp_path):
    (tmp_path / "cifar10-jpg.tar.gz").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match=r"not a readable \.tar\.gz archive"):
        load_cifar10(root=tmp_path)


def test_broken_image_in_archive_is_named(tmp_path, cifar_jpegs):
    images = dict(cifar_jpegs)
    images[("train", "cat", "0001.jpg")] = images[("train", "cat", "0001.jpg")][:40]  # cut short
    write_archive(tmp_path / "cifar10-jpg.tar.gz", images)
    with pytest.raises(ValueError, match=r"train/cat/0001\.jpg: not a readable JPEG/PNG image"):
        load_cifar10(root=tmp_path)


def test_image_of_the_wrong_size_is_named(tmp_path, cifar_jpegs):
    images = dict(cifar_jpegs)
    big = io.BytesIO()
    Image.new("RGB", (28, 28)).save(big, format="JPEG")
    images[("test", "dog", "0000.jpg")] = big.getvalue()
    write_archive(tmp_path / "cifar10-jpg.tar.gz", images)
    with pytest.raises(ValueError, match=r"test/dog/0000\.jpg: image is 28x28 pixels, expected 32x32"):
        load_cifar10(root=tmp_path)


def test_unknown_class_folder_is_named(tmp_path, cifar_jpegs):
    images = dict(cifar_jpegs)
    images[("train", "zebra", "0000.jpg")] = images[("train", "cat", "0000.jpg")]
    write_folders(tmp_path, images)
    with pytest.raises(ValueError, match=r"not CIFAR-10 classes: \['zebra'\]"):
        load_cifar10(root=tmp_path)


def test_folder_with_only_a_training_split_is_incomplete(tmp_path, cifar_jpegs):
    write_folders(tmp_path, {key: blob for key, blob in cifar_jpegs.items() if key[0] == "train"})
    with pytest.raises(ValueError, match=r"train/<class>/ images but no test/<class>/ images"):
        load_cifar10(root=tmp_path)


def test_empty_directory_lists_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(root=tmp_path / "empty")
    message = str(info.value)
    for looked_for in ("cifar-10-batches-py: missing", "cifar10-jpg.tar.gz: missing", "image folders: missing or empty",
                       "download=True", "EEP590_DATA"):
        assert looked_for in message
    assert isinstance(info.value, FileNotFoundError) and info.value.tried


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"nowhere \(root\): no such directory"):
        load_mnist(root=tmp_path / "nowhere")


@pytest.fixture
def no_data_anywhere(tmp_path, monkeypatch, tmp_cache):
    """EEP590_DATA, ./data and the cache all empty or missing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("EEP590_DATA", str(empty))
    monkeypatch.chdir(tmp_path)
    return [empty, tmp_path / "data", tmp_cache]


@pytest.mark.parametrize("loader", [load_cifar10, load_mnist])
def test_no_data_anywhere_names_every_place_and_how_to_get_it(no_data_anywhere, loader):
    with pytest.raises(DatasetNotFoundError) as info:
        loader()
    message = str(info.value)
    for place in no_data_anywhere:
        assert str(place) in message, f"{place} is not named in:\n{message}"
    assert "download=True" in message and "EEP590_DATA" in message


def test_download_failure_keeps_the_list_of_places(no_data_anywhere, monkeypatch):
    def offline(*args):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.arrays, "_download", offline)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)download=True: downloading into .* failed.*unreachable"):
        load_cifar10(download=True)


def test_download_goes_to_eep590_data_in_torchvision_layout(no_data_anywhere, monkeypatch):
    """download=True hands torchvision the EEP590_DATA folder and then reads its cifar-10-batches-py."""
    calls = []
    batches = [(np.full((1, 32, 32, 3), i, np.uint8), [i]) for i in range(6)]

    def fake_download(dataset_class_name, destination):
        calls.append((dataset_class_name, destination))
        write_cifar_pickles(destination / "cifar-10-batches-py", batches)

    monkeypatch.setattr(data.arrays, "_download", fake_download)
    X_train, y_train, X_test, y_test = load_cifar10(download=True)
    assert calls == [("CIFAR10", no_data_anywhere[0])]
    assert y_train.tolist() == [0, 1, 2, 3, 4] and y_test.tolist() == [5]


# ---------------------------------------------------------------------------------------------- MNIST


def read_idx_gz(path, header):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def test_shared_mnist_test_set_is_split_offline(shared_data):
    raw_images = read_idx_gz(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    raw_labels = read_idx_gz(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    with pytest.warns(MNISTOfflineSplitWarning, match="10,000 test images"):
        X_train, y_train, X_test, y_test = load_mnist()
    assert X_train.shape == (8000, 28, 28) and X_test.shape == (2000, 28, 28) and X_train.dtype == np.uint8
    assert y_train.dtype == np.int64
    # stratified: every digit keeps a fifth of its images (rounded) for testing
    counts = np.bincount(raw_labels, minlength=10)
    assert np.bincount(y_test, minlength=10).tolist() == np.round(counts / 5).astype(int).tolist()
    # together the two parts are exactly the original (image, label) pairs
    def pairs(X, y):
        return sorted(image.tobytes() + bytes([label]) for image, label in zip(X, y))

    assert pairs(np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test])) == pairs(raw_images, raw_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load_mnist()
    assert_same_arrays(again, (X_train, y_train, X_test, y_test))


def write_idx(path, array, compress=False):
    payload = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def fake_mnist(directory, n_train=6, n_test=4, compress=False):
    rng = np.random.default_rng(3)
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))
    suffix = ".gz" if compress else ""
    for stem, array in zip(("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"), arrays):
        write_idx(directory / (stem + suffix), array, compress)
    return arrays


@pytest.mark.parametrize("layout, compress", [("MNIST/raw", False), ("mnist", True)])
def test_full_mnist_in_torchvision_or_plain_layout(tmp_path, layout, compress):
    want = fake_mnist(tmp_path / layout, compress=compress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full set: no offline-split warning
        got = load_mnist(root=tmp_path)
    assert_same_arrays(got, (want[0].astype(np.uint8), want[1].astype(np.int64),
                             want[2].astype(np.uint8), want[3].astype(np.int64)))


def test_truncated_mnist_file_is_named(tmp_path, shared_data):
    blob = (shared_data / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 3])
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes((shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: not a readable gzip file"):
        load_mnist(root=tmp_path)


def test_idx_file_shorter_than_its_header_promises_is_named(tmp_path):
    fake_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated idx file"):
        load_mnist(root=tmp_path)


def test_file_that_is_not_idx_is_named(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: not an idx file"):
        load_mnist(root=tmp_path)


def test_mismatched_mnist_files_are_named(tmp_path):
    fake_mnist(tmp_path, n_test=4)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3))
    with pytest.raises(ValueError, match=r"holds 3 labels but .*t10k-images-idx3-ubyte holds 4 images"):
        load_mnist(root=tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte has no matching t10k-labels idx file"):
        load_mnist(root=tmp_path)


# ------------------------------------------------------------------------------------ get_cifar10_data


def test_get_cifar10_data_cs231n_dict(small_archive_root):
    X_train, y_train, X_test, y_test = load_cifar10(root=small_archive_root)
    d = get_cifar10_data(num_training=30, num_validation=10, num_test=5, root=small_archive_root)
    assert d["X_train"].shape == (30, 3, 32, 32) and d["X_val"].shape == (10, 3, 32, 32)
    assert d["X_test"].shape == (5, 3, 32, 32) and all(d[k].dtype == np.float32 for k in ("X_train", "X_val", "X_test"))
    assert abs(d["X_train"].mean(axis=0)).max() < 1e-3, "the mean training image is subtracted"
    # the rows are training images (minus one shared mean image), and train and val are disjoint
    raw = {image.tobytes(): label for image, label in zip(X_train.transpose(0, 3, 1, 2).astype(np.float32), y_train)}
    plain = get_cifar10_data(num_training=30, num_validation=10, num_test=5, subtract_mean=False,
                             root=small_archive_root)
    np.testing.assert_allclose(d["X_val"], plain["X_val"] - plain["X_train"].mean(axis=0), atol=1e-3)
    keys = [image.tobytes() for image in np.concatenate([plain["X_train"], plain["X_val"]])]
    assert all(key in raw for key in keys) and len(set(keys)) == 40
    assert [raw[key] for key in keys] == np.concatenate([plain["y_train"], plain["y_val"]]).tolist()
    again = get_cifar10_data(num_training=30, num_validation=10, num_test=5, root=small_archive_root)
    np.testing.assert_array_equal(again["y_train"], d["y_train"])
    other = get_cifar10_data(num_training=30, num_validation=10, num_test=5, seed=1, root=small_archive_root)
    assert not np.array_equal(other["X_train"], d["X_train"]), "another seed should draw other images"
    channels_last = get_cifar10_data(num_training=3, num_validation=1, num_test=1, channels_first=False,
                                     root=small_archive_root)
    assert channels_last["X_train"].shape == (3, 32, 32, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_training": 35, "num_validation": 10}, r"num_training \+ num_validation = 45 exceeds the 40 training"),
    ({"num_test": 21}, r"num_test = 21 exceeds the 20 test images"),
    ({"num_training": -1}, r"num_training must be a non-negative integer, got -1"),
    ({"num_validation": 2.5}, r"num_validation must be a non-negative integer, got 2.5"),
])
def test_get_cifar10_data_bad_sizes(small_archive_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_cifar10_data(root=small_archive_root, **{"num_training": 30, "num_validation": 5, "num_test": 5, **kwargs})


# -------------------------------------------------------------------------------------------- loaders


def test_cifar10_loaders_split_normalise_and_batch(small_archive_root):
    X_train, y_train, X_test, y_test = load_cifar10(root=small_archive_root)
    train_loader, val_loader, test_loader = cifar10_loaders(batch_size=8, val_size=10, seed=0, augment=False,
                                                            root=small_archive_root)
    train_idx, val_idx = train_loader.dataset.indices, val_loader.dataset.indices
    assert len(train_idx) == 30 and len(val_idx) == 10 and not set(train_idx) & set(val_idx)
    assert len(test_loader.dataset) == 20
    x, y = next(iter(val_loader))  # unshuffled: the first 8 validation images
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    mean = np.array(CIFAR10_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(CIFAR10_STD, dtype=np.float32)[:, None, None]
    want = (X_train[val_idx[:8]].transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-5, atol=1e-5)
    assert y.tolist() == y_train[val_idx[:8]].tolist()
    assert sum(len(batch[1]) for batch in train_loader) == 30


def test_cifar10_loaders_are_seeded(small_archive_root):
    def first_batch_and_split(seed):
        train_loader, val_loader, _ = cifar10_loaders(batch_size=8, val_size=10, seed=seed, root=small_archive_root)
        torch.manual_seed(123)  # the augmentation's randomness
        x, y = next(iter(train_loader))
        return x, y, val_loader.dataset.indices

    x0, y0, val0 = first_batch_and_split(0)
    x1, y1, val1 = first_batch_and_split(0)
    torch.testing.assert_close(x0, x1)
    assert torch.equal(y0, y1) and np.array_equal(val0, val1)
    _, _, val2 = first_batch_and_split(1)
    assert not np.array_equal(np.sort(val0), np.sort(val2))


def test_cifar10_loaders_subset_and_augmentation(small_archive_root):
    train_loader, _, _ = cifar10_loaders(batch_size=4, val_size=10, subset=4, augment=True, root=small_archive_root)
    assert len(train_loader.dataset) == 4
    dataset = train_loader.dataset
    plain = ArrayImageDataset(dataset.images.permute(0, 2, 3, 1).numpy(), dataset.labels.numpy(), CIFAR10_MEAN,
                              CIFAR10_STD)
    torch.manual_seed(0)
    augmented = [dataset[0][0] for _ in range(20)]
    assert all(a.shape == (3, 32, 32) for a in augmented)
    assert any(not torch.equal(a, plain[0][0]) for a in augmented), "augmentation never changed the image"
    # a shift by the padding fills zero pixels, which normalise to -mean/std
    pad_value = (-torch.tensor(CIFAR10_MEAN) / torch.tensor(CIFAR10_STD)).view(3, 1, 1)
    assert any(torch.isclose(a, pad_value.expand(3, 32, 32)).all(dim=0).any() for a in augmented)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
    ({"val_size": 40}, r"val_size must be an integer in \[0, 39\], got 40"),
    ({"subset": 31}, r"subset must be an integer in \[1, 30\]"),
])
def test_cifar10_loaders_bad_arguments(small_archive_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cifar10_loaders(root=small_archive_root, **{"val_size": 10, **kwargs})


def test_mnist_loaders_on_the_shared_copy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MNISTOfflineSplitWarning)
        X_train, y_train, X_test, y_test = load_mnist()
        train_loader, val_loader, test_loader = mnist_loaders(batch_size=64, seed=0)
    assert len(val_loader.dataset) == 800 and len(train_loader.dataset) == 7200 and len(test_loader.dataset) == 2000
    assert not set(train_loader.dataset.indices) & set(val_loader.dataset.indices)
    x, y = next(iter(test_loader))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    want = (X_test[:64, None].astype(np.float32) / 255 - MNIST_MEAN[0]) / MNIST_STD[0]
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-5, atol=1e-5)
    assert y.tolist() == y_test[:64].tolist()


@pytest.mark.parametrize("images, labels, mean, message", [
    (np.zeros((2, 8, 8, 3), np.float32), [0, 1], CIFAR10_MEAN, r"images must be uint8 .* got float32 \(2, 8, 8, 3\)"),
    (np.zeros((2, 8), np.uint8), [0, 1], CIFAR10_MEAN, r"images must be uint8 \(N, H, W, C\) or \(N, H, W\)"),
    (np.zeros((2, 8, 8, 3), np.uint8), [0, 1, 2], CIFAR10_MEAN, r"labels must be integers of shape \(2,\)"),
    (np.zeros((2, 8, 8, 3), np.uint8), [0.5, 1.0], CIFAR10_MEAN, r"labels must be integers"),
    (np.zeros((2, 8, 8), np.uint8), [0, 1], CIFAR10_MEAN, r"mean and std need 1 values"),
])
def test_array_image_dataset_bad_input(images, labels, mean, message):
    with pytest.raises(ValueError, match=message):
        ArrayImageDataset(images, labels, mean, CIFAR10_STD)
