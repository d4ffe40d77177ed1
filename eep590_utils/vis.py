"""Plotting helpers for the notebooks: image grids, conv filters, feature maps, training curves, confusion matrices.

Every function returns a ``matplotlib.figure.Figure`` and never calls ``plt.show()``.
In a notebook (the inline backend) the figure appears once whichever usual way the
cell is written: as its last expression (``plot_training_curves(history)``),
followed by ``plt.show()``, with a trailing ``;``, or assigned (``fig = ...``, shown
at the end of the cell like any pyplot figure). Elsewhere (scripts, tests, the Agg
backend) the figures are closed in pyplot before they are returned, so loops do not
pile up open figures; ``fig.savefig("name.png")`` saves one.
Inputs may be NumPy arrays or torch tensors (on any device, with or without grad).

Matplotlib is imported inside the functions, so ``import eep590_utils`` never
chooses a backend.
"""
import math
from numbers import Integral

import numpy as np

__all__ = [
    "show_images",
    "show_filters",
    "show_feature_maps",
    "plot_training_curves",
    "plot_confusion_matrix",
]

_TILE_INCHES = 1.6  # width and height of one image tile


def _to_numpy(value, name):
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()  # also covers float16/bfloat16
        value = value.numpy()
    elif isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        value = np.stack([_to_numpy(v, name) for v in value])
    try:
        array = np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be an array or tensor: {err}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be a numeric array or tensor, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real-valued, got dtype {array.dtype}")
    return array


def _check_finite(array, name):
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            first = [int(i) for i in np.argwhere(bad)[0]]
            raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite values (the first at index {first})")


def _check_not_empty(array, name, layout):
    if array.size == 0:
        raise ValueError(f"{name} is empty: shape {array.shape} (expected {layout})")


def _check_ncols(ncols):
    if isinstance(ncols, bool) or not isinstance(ncols, Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    return int(ncols)


def _inline_backend():
    """True under IPython's inline backend (``%matplotlib inline``, Jupyter's default)."""
    import matplotlib

    return "inline" in str(matplotlib.get_backend()).lower()


_figure_class = None


def _notebook_figure_class():
    """A Figure subclass that a notebook shows once, whether it is a cell's result or shown by the backend.

    The inline backend shows every figure left open in pyplot at the end of a cell (and on ``plt.show()``), and
    IPython also shows a figure that is the cell's result: twice. This class, shown as a result, draws itself
    and closes itself in pyplot first, so the backend does not draw it again.
    """
    global _figure_class
    if _figure_class is None:
        from matplotlib.figure import Figure

        class NotebookFigure(Figure):
            def _ipython_display_(self):
                import base64

                import matplotlib.pyplot as plt
                from IPython.core.pylabtools import print_figure
                from IPython.display import display

                plt.close(self)  # the inline backend would show it again at the end of the cell
                png = print_figure(self, "png", bbox_inches="tight")
                if png:
                    display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(self)},
                            raw=True)

        _figure_class = NotebookFigure
    return _figure_class


def _new_figure(figsize):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, FigureClass=_notebook_figure_class())


def _finish(fig):
    """Leave ``fig`` open in pyplot under the inline backend (the notebook shows it once); else close it there."""
    import matplotlib.pyplot as plt

    if not _inline_backend():
        plt.close(fig)  # it stays usable (savefig, axes)
    return fig


def _tile_grid(fig, count, ncols, title=None):
    """``count`` image axes in rows of ``ncols`` (the unused cells of the last row are removed)."""
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.remove()
    axes = axes[:count]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title is not None:
        fig.suptitle(str(title))
    return axes


def _grid_figsize(count, ncols, extra_height=0.0):
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    return (max(2.0, ncols * _TILE_INCHES), nrows * _TILE_INCHES + extra_height)


def _unit_range(image):
    """Min-max rescale one image to [0, 1] (a constant image becomes 0.5)."""
    low, high = float(image.min()), float(image.max())
    if high - low <= 0:
        return np.full_like(image, 0.5, dtype=np.float64)
    return (image - low) / (high - low)


# --------------------------------------------------------------------------------------------- images


def _images_to_nhwc(images):
    """(N, H, W) / (N, H, W, C) / (N, C, H, W) -> float (N, H, W, C) in [0, 1], C in {1, 3, 4}."""
    array = _to_numpy(images, "images")
    layouts = "(N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 (or 4 for RGBA channels-last)"
    if array.ndim not in (3, 4):
        hint = " (a single image? add a batch axis: images[None])" if array.ndim == 2 else ""
        raise ValueError(f"images must have 3 or 4 dimensions, {layouts}; got shape {array.shape}{hint}")
    _check_not_empty(array, "images", layouts)
    if array.ndim == 3:
        array = array[..., None]
    elif array.shape[-1] in (1, 3, 4):
        pass  # channels-last
    elif array.shape[1] in (1, 3):
        array = np.moveaxis(array, 1, -1)
    else:
        raise ValueError(f"images of shape {array.shape} have no channel axis of size 1 or 3: expected {layouts}")
    _check_finite(array, "images")

    if array.dtype == bool:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"integer images must hold values in 0..255, got values from {low} to {high}")
        return array.astype(np.float64) / 255.0
    array = array.astype(np.float64)
    if array.min() < 0 or array.max() > 1:
        # e.g. normalised tensors: show each image's own range
        array = np.stack([_unit_range(image) for image in array])
    return array


def _label_texts(labels, class_names, count):
    if labels is None:
        return None
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().tolist()
    labels = list(np.asarray(labels).ravel().tolist()) if not isinstance(labels, (list, tuple)) else list(labels)
    if len(labels) != count:
        raise ValueError(f"got {len(labels)} labels for {count} images")
    if class_names is None:
        return [str(label) for label in labels]
    class_names = list(class_names)
    texts = []
    for label in labels:
        if isinstance(label, str):
            texts.append(label)
            continue
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, Integral) or not 0 <= label < len(class_names):
            raise ValueError(f"label {label!r} is not a class index for the {len(class_names)} class_names")
        texts.append(str(class_names[label]))
    return texts


def show_images(images, labels=None, class_names=None, ncols=8, title=None):
    """A grid of images, each titled with its label.

    Inputs:
    - images: (N, H, W) grayscale, (N, H, W, C) channels-last or (N, C, H, W)
      channels-first with C = 1 or 3 (4 = RGBA, channels-last only); NumPy array
      or torch tensor. uint8 (and other integer) images are read as 0..255;
      float images in [0, 1] are shown as they are, other float images
      (e.g. normalised tensors) are rescaled to [0, 1] one image at a time.
      A list of equally shaped images is stacked.
    - labels: optional sequence of N class indices (or strings), shown above the images.
    - class_names: optional sequence mapping a class index to its name.
    - ncols: images per row.
    - title: optional title over the grid.

    Returns a matplotlib Figure with one axes per image.
    """
    ncols = _check_ncols(ncols)
    array = _images_to_nhwc(images)
    count = array.shape[0]
    texts = _label_texts(labels, class_names, count)
    fig = _new_figure(_grid_figsize(count, ncols, extra_height=0.4 if title is not None else 0.0))
    axes = _tile_grid(fig, count, ncols, title)
    for i, ax in enumerate(axes):
        image = array[i]
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        if texts is not None:
            ax.set_title(texts[i], fontsize=9)
    fig.tight_layout()
    return _finish(fig)


# -------------------------------------------------------------------------------- filters, feature maps


def _channel_mosaic(filt):
    """(C, kh, kw) -> one 2-D image: the C channels in a near-square grid, NaN in the 1-pixel gaps."""
    channels, kh, kw = filt.shape
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    mosaic = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan)
    for c in range(channels):
        r, q = divmod(c, cols)
        mosaic[r * (kh + 1):r * (kh + 1) + kh, q * (kw + 1):q * (kw + 1) + kw] = filt[c]
    return mosaic


def show_filters(weights, ncols=8):
    """The filters of a convolution layer, one tile per filter.

    Inputs:
    - weights: (F, C, kh, kw) NumPy array or torch tensor, e.g. ``conv.weight``.
      With C == 3 each filter is shown as an RGB image; otherwise each
      filter's C channels are shown in grayscale, laid out in a small grid
      inside its tile (separated by blue gaps). Each filter is min-max scaled
      on its own, so the tiles show patterns, not relative magnitudes.
    - ncols: filters per row.

    Returns a matplotlib Figure with F axes, titled by filter index.
    """
    import matplotlib

    ncols = _check_ncols(ncols)
    w = _to_numpy(weights, "weights")
    if w.ndim != 4:
        raise ValueError(f"weights must have 4 dimensions (F, C, kh, kw), got shape {w.shape}")
    _check_not_empty(w, "weights", "(F, C, kh, kw) with every size at least 1")
    _check_finite(w, "weights")
    w = w.astype(np.float64)
    num_filters, channels = w.shape[:2]
    gray = matplotlib.colormaps["gray"].with_extremes(bad="#8fb3d9")
    fig = _new_figure(_grid_figsize(num_filters, ncols))
    axes = _tile_grid(fig, num_filters, ncols)
    for f, ax in enumerate(axes):
        scaled = _unit_range(w[f])  # (C, kh, kw), one scale for the whole filter
        if channels == 3:
            ax.imshow(np.moveaxis(scaled, 0, -1), interpolation="nearest")
        else:
            ax.imshow(np.ma.masked_invalid(_channel_mosaic(scaled)), cmap=gray, vmin=0.0, vmax=1.0,
                      interpolation="nearest")
        ax.set_title(f"filter {f}", fontsize=8)
    fig.tight_layout()
    return _finish(fig)


def show_feature_maps(maps, ncols=8):
    """The channels of one activation tensor, one tile per channel.

    Inputs:
    - maps: (C, H, W) NumPy array or torch tensor (a batch of one, (1, C, H, W),
      is accepted too). Each channel is colour-mapped over its own range.
    - ncols: channels per row.

    Returns a matplotlib Figure with C axes, titled by channel index.
    """
    ncols = _check_ncols(ncols)
    array = _to_numpy(maps, "maps")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        hint = " (a batch of several? pick one: maps[i])" if array.ndim == 4 else ""
        raise ValueError(f"maps must have shape (C, H, W), got shape {array.shape}{hint}")
    _check_not_empty(array, "maps", "(C, H, W) with every size at least 1")
    _check_finite(array, "maps")
    array = array.astype(np.float64)
    fig = _new_figure(_grid_figsize(array.shape[0], ncols))
    axes = _tile_grid(fig, array.shape[0], ncols)
    for c, ax in enumerate(axes):
        low, high = float(array[c].min()), float(array[c].max())
        if high <= low:  # a constant map (e.g. a dead ReLU channel): keep it visibly flat
            low, high = low - 0.5, high + 0.5
        ax.imshow(array[c], cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(f"ch {c}", fontsize=8)
    fig.tight_layout()
    return _finish(fig)


# ----------------------------------------------------------------------------------------- curves


def _series(history, key, required):
    if key not in history or history[key] is None:
        if required:
            raise ValueError(f"history has no {key!r} entry (keys: {sorted(history)}); pass the dict that train() returns")
        return None
    values = _to_numpy(list(history[key]) if not hasattr(history[key], "shape") else history[key], f"history[{key!r}]")
    values = values.astype(np.float64).ravel()
    if values.size == 0:
        if required:
            raise ValueError(f"history[{key!r}] is empty: no epoch was recorded")
        return None
    return values


def plot_training_curves(history):
    """Loss and accuracy per epoch, training and validation, in two panels.

    Inputs:
    - history: the dict returned by ``train()``: lists ``train_loss`` and
      ``train_acc`` (one entry per epoch), and optionally ``val_loss`` and
      ``val_acc`` of the same length (empty or missing when there was no
      validation set). Accuracies are fractions in [0, 1]. An accuracy list
      that is all NaN (a task without classes) is left out.

    Returns a matplotlib Figure with two axes, titled "loss" and "accuracy".
    """
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict of lists (what train() returns), got {type(history).__name__}")
    series = {
        "train_loss": _series(history, "train_loss", required=True),
        "train_acc": _series(history, "train_acc", required=True),
        "val_loss": _series(history, "val_loss", required=False),
        "val_acc": _series(history, "val_acc", required=False),
    }
    epochs = len(series["train_loss"])
    for key, values in series.items():
        if values is None:
            continue
        if len(values) != epochs:
            raise ValueError(f"history[{key!r}] has {len(values)} entries but train_loss has {epochs}")
        if key.endswith("_acc") and np.isnan(values).all():
            series[key] = None  # accuracy not defined for this task
            continue
        _check_finite(values, f"history[{key!r}]")

    x = np.arange(1, epochs + 1)
    fig = _new_figure((10, 3.8))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, kind, label in ((loss_ax, "loss", "loss"), (acc_ax, "acc", "accuracy")):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = series[f"{split}_{kind}"]
            if values is not None:
                ax.plot(x, values, style, label=split, markersize=4)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes)
        if epochs <= 20:
            ax.set_xticks(x)
    fig.tight_layout()
    return _finish(fig)


def plot_confusion_matrix(cm, class_names=None, normalize=False, title="Confusion matrix"):
    """A confusion matrix as a heat map: rows are true classes, columns predicted classes.

    Inputs:
    - cm: (K, K) array or tensor of non-negative counts, e.g. from ``confusion_matrix()``.
    - class_names: optional sequence of K names for the ticks (default 0..K-1).
    - normalize: if True, show each row as fractions of that class (per-class recall).
    - title: the axes title.

    Returns a matplotlib Figure (the matrix axes plus its colour bar); the
    cells hold their counts (or fractions) when K <= 20.
    """
    array = _to_numpy(cm, "cm")
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {array.shape}")
    _check_not_empty(array, "cm", "(K, K) with K at least 1")
    _check_finite(array, "cm")
    if (array < 0).any():
        raise ValueError(f"cm holds counts, but it has negative entries (min {array.min()})")
    k = array.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"got {len(names)} class_names for a {k}x{k} confusion matrix")
    values = array.astype(np.float64)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)

    side = min(12.0, 2.5 + 0.55 * k)
    fig = _new_figure((side + 1.0, side))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(values.max(), 1.0))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    long_names = max(map(len, names)) > 3
    ax.set_xticks(range(k), labels=names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 20:
        threshold = values.max() / 2.0
        integer_counts = not normalize and np.all(np.mod(array, 1) == 0)
        for i in range(k):
            for j in range(k):
                text = f"{int(array[i, j])}" if integer_counts else f"{values[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > threshold else "black")
    fig.tight_layout()
    return _finish(fig)
