"""A small, fast CIFAR-10 CNN and the recipe that trains it, aiming at airbench94's accuracy in its time.

Target (README of the data): airbench94 reaches 90.7% test accuracy on the course's JPEG copy of CIFAR-10
in 2.2 s on an H100. This recipe has not yet been timed on a GPU: run benchmarks/cifar10_speed.py there
(its --epochs sweep) to measure it and pick the epoch budget.

This is the reference architecture for the course's ``cnn_training`` notebook. It follows the ideas of
airbench94 (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", arXiv:2404.00498) with
fewer tricks, so that every line can be explained in a lecture:

- data stay on the GPU the whole time: uint8 images are normalized once, padded once, and each epoch
  is augmented on the GPU (random 32x32 crop of the 2-pixel reflect-padded image, random mirror);
- the network is a VGG-like stack of three conv blocks (conv -> max-pool -> BatchNorm -> GELU ->
  conv -> BatchNorm -> GELU) behind a 2x2 "whitening" stem whose filters are fixed to decorrelate
  the pixels of 2x2 patches (computed from the training images, not learned);
- training uses bf16 autocast, channels_last tensors, label smoothing, SGD with Nesterov momentum,
  a high learning rate for the BatchNorm shifts and a linear warm-up/decay ("triangle") schedule;
- the test prediction averages the logits of each image and its mirror image, and of both shifted
  by one pixel (test-time augmentation, TTA).
"""
import torch
import torch.nn.functional as F
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel mean of the training images, in [0, 1]
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class ConvBlock(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H // 2, W // 2): conv3x3, max-pool 2, BN, GELU, conv3x3, BN, GELU."""

    def __init__(self, in_channels, out_channels, bn_momentum=0.4):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels, momentum=bn_momentum)
        for conv in (self.conv1, self.conv2):  # start near identity: channel i passes through to i
            nn.init.dirac_(conv.weight.data[:conv.in_channels])
        for norm in (self.norm1, self.norm2):  # BN scale fixed at 1 (the next conv can rescale); shift learns
            norm.weight.requires_grad_(False)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class FastCifarNet(nn.Module):
    """(N, 3, 32, 32) normalized images -> (N, 10) logits.

    stem: 2x2 conv, 24 channels, no padding (32 -> 31 pixels), GELU
    blocks: ConvBlock widths 64, 256, 256 (31 -> 15 -> 7 -> 3 pixels)
    head: global max-pool, linear layer without bias, logits scaled by 1/9 (a fixed "temperature")
    About 1.97 M parameters.
    """

    def __init__(self, widths=(64, 256, 256), stem_channels=24, logit_scale=1 / 9):
        super().__init__()
        self.stem = nn.Conv2d(3, stem_channels, kernel_size=2)
        channels = (stem_channels,) + tuple(widths)
        self.blocks = nn.Sequential(*[ConvBlock(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])])
        self.head = nn.Linear(channels[-1], 10, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x):
        x = self.blocks(F.gelu(self.stem(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)  # (N, C, 3, 3) -> (N, C)
        return self.head(x) * self.logit_scale


@torch.no_grad()
def whiten_stem_(conv, images, eps=5e-4):
    """Fix the weights of ``conv`` (2*3*k*k output channels, k x k kernel) to whiten k x k patches; freeze them.

    images: (N, 3, H, W) normalized training images. The patch covariance Sigma = V diag(lambda) V^T gives
    filters v_i / sqrt(lambda_i + eps) (decorrelated, unit-variance outputs) and their negatives, so that the
    GELU after the stem keeps both signs of every component.
    """
    kh, kw = conv.kernel_size
    patches = images.unfold(2, kh, 1).unfold(3, kw, 1)  # (N, 3, H', W', kh, kw)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * kh * kw).float()
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, 3, kh, kw)
    conv.weight.copy_(torch.cat([filters, -filters]))
    conv.weight.requires_grad_(False)


def low_precision(device):
    """The dtype for activations: bfloat16 on a GPU (tensor cores), float32 on a CPU (bf16 is slow there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def normalize_images(images):
    """uint8 (N, H, W, 3) -> normalized (N, 3, H, W) tensor in channels_last memory layout (bf16 on GPU)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    mean = torch.tensor(CIFAR10_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=images.device).view(3, 1, 1)
    x = images.permute(0, 3, 1, 2).float() / 255  # a permuted NHWC tensor *is* channels_last
    return ((x - mean) / std).to(low_precision(images.device))


def random_crop_flip(padded, size=32):
    """(N, 3, H + 2p, W + 2p) padded images -> (N, 3, size, size) random crops, half of them mirrored.

    Every image gets its own random offset (0..2p in each direction) and coin flip, all in one gather.
    """
    n, device = len(padded), padded.device
    pixels = torch.arange(size, device=device)
    rows = torch.randint(0, padded.shape[2] - size + 1, (n, 1), device=device) + pixels  # (N, size)
    cols = torch.randint(0, padded.shape[3] - size + 1, (n, 1), device=device) + pixels  # (N, size)
    mirror = torch.rand(n, 1, device=device) < 0.5
    cols = torch.where(mirror, cols.flip(1), cols)
    nhwc = padded.permute(0, 2, 3, 1)  # index pixels, keep channels last
    crops = nhwc[torch.arange(n, device=device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2)  # (N, size, size, 3) -> (N, 3, size, size), channels_last


def train_fast_cifar10(images, labels, epochs=10.0, batch_size=1024, lr=1.5, bias_lr_factor=64.0,
                       momentum=0.85, weight_decay=1.33e-3, label_smoothing=0.2, whiten=True, compile=False,
                       widths=(64, 256, 256), progress=None):
    """Train a FastCifarNet from scratch and return it in eval mode.

    Inputs:
    - images: uint8 tensor (N, 32, 32, 3) on the training device (keep it on the GPU).
    - labels: int64 tensor (N,) of class indices in 0..9, same device.
    - epochs: passes over the data (may be fractional); batch_size: images per SGD step.
    - lr, momentum, weight_decay: SGD (Nesterov) on the mean loss; the BatchNorm shifts get
      bias_lr_factor times the learning rate and weight_decay / bias_lr_factor (the same decay per step).
    - whiten: fix the stem to the whitening filters of 5000 random training images (else learn it).
    - compile: train through torch.compile(model) (the first call compiles for tens of seconds).
    - widths: channels of the three conv blocks (see FastCifarNet).
    - progress: optional callable progress(step, total_steps, loss) called after every step (for logging).
    """
    if images.shape[1:] != (32, 32, 3) or labels.shape != images.shape[:1]:
        raise ValueError(f"expected images (N, 32, 32, 3) and labels (N,), got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    x_all = normalize_images(images)
    padded = F.pad(x_all, (2, 2, 2, 2), mode="reflect")  # (N, 3, 36, 36): pad once, crop every epoch
    model = FastCifarNet(widths=widths).to(images.device, memory_format=torch.channels_last)
    if whiten:
        whiten_stem_(model.stem, x_all[torch.randperm(len(x_all), device=x_all.device)[:5000]])
    net = torch.compile(model) if compile else model

    bn_shifts = [p for name, p in model.named_parameters() if "norm" in name and p.requires_grad]
    others = [p for name, p in model.named_parameters() if "norm" not in name and p.requires_grad]
    optimizer = torch.optim.SGD([dict(params=bn_shifts, lr=lr * bias_lr_factor, weight_decay=weight_decay / bias_lr_factor),
                                 dict(params=others, lr=lr, weight_decay=weight_decay)],
                                momentum=momentum, nesterov=True)
    steps_per_epoch = len(images) // batch_size  # drop the last partial batch: one batch shape for compile
    total_steps = max(1, round(epochs * steps_per_epoch))
    peak = 0.23 * total_steps  # learning-rate factor: 0.2 -> 1 linearly until `peak`, then 1 -> 0.07

    def lr_factor(step):
        return 0.2 + 0.8 * step / peak if step < peak else 1 - 0.93 * (step - peak) / (total_steps - peak)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    model.train()
    for step in range(total_steps):
        if step % steps_per_epoch == 0:  # new epoch: fresh augmentation and order
            order = torch.randperm(len(images), device=images.device)
            x_epoch, y_epoch = random_crop_flip(padded[order]), labels[order]
        batch = slice((step % steps_per_epoch) * batch_size, (step % steps_per_epoch + 1) * batch_size)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.is_cuda):
            loss = F.cross_entropy(net(x_epoch[batch]), y_epoch[batch], label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if progress is not None:
            progress(step, total_steps, loss)
    return model.eval()


@torch.no_grad()
def predict_with_tta(model, images, translate=True, batch_size=2000):
    """uint8 (N, 32, 32, 3) images -> (N, 10) float32 logits averaged over test-time augmentations.

    Always the image and its mirror image; with ``translate`` also both of them shifted by one pixel
    (up-left and down-right, reflect padding), weighted as in airbench94: half the weight on the
    unshifted pair, half on the two shifted pairs.
    """
    model.eval()
    logits = []
    for chunk in images.split(batch_size):
        x = normalize_images(chunk)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.is_cuda):
            out = (model(x) + model(x.flip(-1))).float() / 2
            if translate:
                padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
                shifted = [padded[:, :, :32, :32], padded[:, :, 2:, 2:]]
                out_shifted = sum((model(s) + model(s.flip(-1))).float() / 4 for s in shifted)
                out = (out + out_shifted) / 2
        logits.append(out)
    return torch.cat(logits)


def predict_with_flip_tta(model, images, batch_size=2000):
    """uint8 (N, 32, 32, 3) images -> (N, 10) float32 logits, the mean over each image and its mirror."""
    return predict_with_tta(model, images, translate=False, batch_size=batch_size)


def accuracy(logits, labels):
    """Fraction of rows of logits (N, C) whose argmax equals labels (N,)."""
    return (logits.argmax(1) == labels).float().mean().item()
