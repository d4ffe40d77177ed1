"""torch ``DataLoader``s over the arrays: ``cifar10_loaders``, ``mnist_loaders`` and their ``ArrayImageDataset``.

torch is imported inside the functions, so importing ``eep590_utils.data`` stays light (the grading tools
and ``load_cifar10`` alone never pay for it).
"""
import numpy as np

from .arrays import load_cifar10, load_mnist
from .constants import CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD

__all__ = ["ArrayImageDataset", "cifar10_loaders", "mnist_loaders"]


class ArrayImageDataset:
    """In-memory uint8 images served as normalised float tensors: a map-style dataset for torch's DataLoader.

    Inputs:
    - images: uint8 array (N, H, W, C) or (N, H, W) (one channel)
    - labels: integer array (N,)
    - mean, std: per-channel constants (C values) in units of pixel / 255
    - augment: if True, each access takes a random 32x32-style crop of the image padded by 4 zero pixels and
      flips it horizontally with probability 1/2 (torch's global RNG: seed it with torch.manual_seed)
    - transform: optional callable applied to the normalised (C, H, W) tensor
    - indices: optional (N,) record of where the images came from (kept as ``.indices``)

    Item i is ``(x, y)``: x float32 tensor (C, H, W) = (pixel / 255 - mean) / std, y int64 tensor ().
    """

    def __init__(self, images, labels, mean, std, augment=False, transform=None, indices=None):
        import torch

        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"images must be uint8 (N, H, W, C) or (N, H, W), got {images.dtype} {images.shape}")
        if images.ndim == 3:
            images = images[..., None]
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
        channels = images.shape[-1]
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(f"mean and std need {channels} values (std > 0), got mean={mean}, std={std}")
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment, self.transform, self.padding = augment, transform, 4
        self.indices = None if indices is None else np.asarray(indices)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        import torch
        import torch.nn.functional as F

        image = self.images[i]
        if self.augment:
            pad = self.padding
            height, width = image.shape[1:]
            top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            image = F.pad(image, (pad, pad, pad, pad))[:, top : top + height, left : left + width]
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
        x = (image.float() / 255 - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]


def _split_indices(n, val_size, seed, subset):
    """Seeded disjoint ``(train_idx, val_idx)`` of range(n); ``subset`` keeps that many training indices."""
    if not isinstance(val_size, (int, np.integer)) or not 0 <= val_size < n:
        raise ValueError(f"val_size must be an integer in [0, {n - 1}], got {val_size!r}")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:val_size], order[val_size:]
    if subset is not None:
        if not isinstance(subset, (int, np.integer)) or not 1 <= subset <= len(train):
            raise ValueError(f"subset must be an integer in [1, {len(train)}] (training images after val), got {subset!r}")
        train = train[:subset]
    return train, val


def _make_loaders(datasets, batch_size, seed, num_workers):
    import torch
    from torch.utils.data import DataLoader

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    train, val, test = datasets
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers),
        DataLoader(val, batch_size=batch_size, shuffle=False, num_workers=num_workers),
        DataLoader(test, batch_size=batch_size, shuffle=False, num_workers=num_workers),
    )


def cifar10_loaders(batch_size=128, val_size=5000, seed=0, augment=True, subset=None, root=None, num_workers=0,
                    download=False):
    """CIFAR-10 ``(train_loader, val_loader, test_loader)`` of normalised tensors.

    Inputs:
    - batch_size: images per batch
    - val_size: training images held out for validation (seeded, disjoint from train)
    - seed: the train/val split, the subset and the order of training batches
    - augment: random crop (padding 4) + horizontal flip on the training split only
    - subset: keep only this many training images (None: all the rest after val), for fast runs
    - root, download: as for load_cifar10; num_workers: DataLoader worker processes

    Batches are ``(x, y)``: x float32 (B, 3, 32, 32) normalised with CIFAR10_MEAN/CIFAR10_STD, y int64 (B,).
    Each loader's ``.dataset`` is an ArrayImageDataset whose ``.indices`` say which images of load_cifar10's
    X_train (or X_test) it holds.
    """
    X_train, y_train, X_test, y_test = load_cifar10(root=root, download=download)
    train, val = _split_indices(len(X_train), val_size, seed, subset)
    datasets = (
        ArrayImageDataset(X_train[train], y_train[train], CIFAR10_MEAN, CIFAR10_STD, augment=augment, indices=train),
        ArrayImageDataset(X_train[val], y_train[val], CIFAR10_MEAN, CIFAR10_STD, indices=val),
        ArrayImageDataset(X_test, y_test, CIFAR10_MEAN, CIFAR10_STD, indices=np.arange(len(X_test))),
    )
    return _make_loaders(datasets, batch_size, seed, num_workers)


def mnist_loaders(batch_size=128, val_size=None, seed=0, subset=None, root=None, num_workers=0, download=False):
    """MNIST ``(train_loader, val_loader, test_loader)`` of normalised tensors (no augmentation).

    Inputs:
    - batch_size: images per batch
    - val_size: training images held out for validation; None holds out a tenth (6000 of 60,000, or 800 of the
      8000 of the offline test-set-only copy: see load_mnist)
    - seed, subset, root, num_workers, download: as for cifar10_loaders

    Batches are ``(x, y)``: x float32 (B, 1, 28, 28) normalised with MNIST_MEAN/MNIST_STD, y int64 (B,).
    """
    X_train, y_train, X_test, y_test = load_mnist(root=root, download=download)
    if val_size is None:
        val_size = len(X_train) // 10
    train, val = _split_indices(len(X_train), val_size, seed, subset)
    datasets = (
        ArrayImageDataset(X_train[train], y_train[train], MNIST_MEAN, MNIST_STD, indices=train),
        ArrayImageDataset(X_train[val], y_train[val], MNIST_MEAN, MNIST_STD, indices=val),
        ArrayImageDataset(X_test, y_test, MNIST_MEAN, MNIST_STD, indices=np.arange(len(X_test))),
    )
    return _make_loaders(datasets, batch_size, seed, num_workers)
