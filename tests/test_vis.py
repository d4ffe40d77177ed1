"""Plotting helpers (eep590_utils.vis), rendered with the Agg backend (conftest sets MPLBACKEND=Agg)."""
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from eep590_utils import (
    plot_confusion_matrix,
    plot_training_curves,
    show_feature_maps,
    show_filters,
    show_images,
)


def render(fig, tmp_path, name="fig.png"):
    """The figure saved as PNG and read back: uint8 (H, W, 3)."""
    assert isinstance(fig, Figure)
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    return np.asarray(Image.open(path).convert("RGB"))


def fraction(pixels, colour, tol=40):
    """Fraction of pixels within ``tol`` of an RGB colour."""
    return float(np.mean(np.all(np.abs(pixels.astype(int) - np.array(colour)) <= tol, axis=-1)))


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def distinct_positions(axes):
    xs = {round(ax.get_position().x0, 3) for ax in axes}
    ys = {round(ax.get_position().y0, 3) for ax in axes}
    return len(xs), len(ys)


@pytest.fixture(autouse=True)
def no_show_and_no_leaks(monkeypatch):
    """The helpers must never call plt.show() and must not leave figures open in pyplot."""
    import matplotlib.pyplot as plt

    def forbidden(*args, **kwargs):
        raise AssertionError("a vis helper called plt.show()")

    monkeypatch.setattr(plt, "show", forbidden)
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a vis helper left a figure open in pyplot"


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


# ----------------------------------------------------------------------------------------- show_images


def red_images(n, layout, kind):
    """n pure-red 8x8 images in the given layout and array kind."""
    hwc = np.zeros((n, 8, 8, 3), dtype=np.float32)
    hwc[..., 0] = 1.0
    if layout == "uint8-hwc":
        array = (hwc * 255).astype(np.uint8)
    elif layout == "float-hwc":
        array = hwc
    else:  # float-chw
        array = np.ascontiguousarray(np.moveaxis(hwc, -1, 1))
    return torch.from_numpy(array) if kind == "torch" else array


@pytest.mark.parametrize("layout", ["uint8-hwc", "float-hwc", "float-chw"])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_show_images_draws_colours_in_the_right_channel(layout, kind, tmp_path):
    fig = show_images(red_images(3, layout, kind))
    assert len(image_axes(fig)) == 3
    pixels = render(fig, tmp_path)
    assert fraction(pixels, (255, 0, 0)) > 0.05, "the red images do not show up red"
    assert fraction(pixels, (0, 0, 255)) == 0.0 and fraction(pixels, (0, 255, 0)) == 0.0


def test_show_images_labels_class_names_and_title(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 10, 10, 3), dtype=np.uint8)
    fig = show_images(images, labels=torch.tensor([2, 0, 1, 2, 0]), class_names=["cat", "dog", "ship"], title="batch 1")
    assert [ax.get_title() for ax in fig.axes] == ["ship", "cat", "dog", "ship", "cat"]
    assert fig._suptitle is not None and fig._suptitle.get_text() == "batch 1"
    pixels = render(fig, tmp_path)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # the random images are drawn


def test_show_images_labels_without_class_names():
    fig = show_images(np.zeros((3, 4, 4)), labels=[7, 8, 9])
    assert [ax.get_title() for ax in fig.axes] == ["7", "8", "9"]
    assert [ax.get_title() for ax in show_images(np.zeros((2, 4, 4))).axes] == ["", ""]


@pytest.mark.parametrize("layout", ["NHW", "N1HW", "NHW1"])
def test_show_images_grayscale(layout, tmp_path):
    checker = (np.indices((12, 12)).sum(axis=0) % 2).astype(np.float64)  # black and white squares
    one = {"NHW": checker, "N1HW": checker[None], "NHW1": checker[..., None]}[layout]
    images = np.stack([one] * 4)
    fig = show_images(torch.tensor(np.ascontiguousarray(images)))
    axes = image_axes(fig)
    assert len(axes) == 4
    assert axes[0].images[0].get_cmap().name == "gray"
    pixels = render(fig, tmp_path)
    assert fraction(pixels, (0, 0, 0), tol=30) > 0.02 and fraction(pixels, (255, 255, 255), tol=30) > 0.02


def test_show_images_rescales_normalised_floats(tmp_path):
    rng = np.random.default_rng(1)
    images = torch.tensor(rng.standard_normal((2, 3, 6, 6)) * 3.0)  # far outside [0, 1]
    fig = show_images(images)
    data = np.asarray(fig.axes[0].images[0].get_array())
    assert data.min() == pytest.approx(0.0) and data.max() == pytest.approx(1.0)


def test_show_images_grid_layout():
    fig = show_images(np.zeros((10, 5, 5, 3), dtype=np.uint8), ncols=4)
    assert len(fig.axes) == 10  # the two unused cells of the last row are removed
    assert distinct_positions(fig.axes) == (4, 3)
    fig = show_images(np.zeros((3, 5, 5)), ncols=8)
    assert distinct_positions(fig.axes) == (3, 1)


def test_show_images_accepts_a_list_of_images():
    fig = show_images([torch.rand(3, 6, 6) for _ in range(3)])
    assert len(image_axes(fig)) == 3


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (np.zeros((8, 8)), {}, "3 or 4 dimensions.*single image"),
        (np.zeros((2, 2, 8, 8, 3)), {}, "3 or 4 dimensions"),
        (np.zeros((0, 8, 8, 3)), {}, "empty"),
        (np.zeros((2, 5, 8, 8)), {}, "channel axis"),
        (np.full((2, 8, 8), np.nan), {}, "NaN"),
        (np.array([[[np.inf]]]), {}, "NaN or infinite"),
        (np.full((2, 4, 4), 300, dtype=np.int64), {}, "0..255"),
        (np.array(["a", "b"]), {}, "numeric"),
        (np.zeros((2, 4, 4)), {"labels": [0]}, "1 labels for 2 images"),
        (np.zeros((2, 4, 4)), {"labels": [0, 3], "class_names": ["a", "b"]}, "label 3"),
        (np.zeros((2, 4, 4)), {"ncols": 0}, "ncols"),
    ],
)
def test_show_images_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        show_images(images, **kwargs)


# ---------------------------------------------------------------------------------------- show_filters


def test_show_filters_rgb(tmp_path):
    weights = torch.zeros(6, 3, 5, 5)
    weights[:, 1] = 1.0  # green channel on, red and blue off (min 0, max 1: scaling keeps them)
    weights[:, 1, 0, 0] = 0.0  # one black pixel per filter
    fig = show_filters(weights, ncols=4)
    axes = image_axes(fig)
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes] == [f"filter {i}" for i in range(6)]
    assert distinct_positions(axes) == (4, 2)
    assert axes[0].images[0].get_array().shape == (5, 5, 3)
    pixels = render(fig, tmp_path)
    assert fraction(pixels, (0, 255, 0)) > 0.03, "filters with only a green channel should look green"
    assert fraction(pixels, (255, 0, 0)) == 0.0


@pytest.mark.parametrize("channels", [1, 2, 16])
def test_show_filters_per_channel_grayscale(channels, tmp_path):
    weights = torch.randn(5, channels, 3, 3, generator=torch.Generator().manual_seed(0))
    fig = show_filters(weights)
    axes = image_axes(fig)
    assert len(axes) == 5
    image = axes[0].images[0]
    assert image.get_cmap().name.startswith("gray")
    data = np.ma.getdata(image.get_array())
    mask = np.ma.getmaskarray(image.get_array())
    assert data.ndim == 2
    assert int((~mask).sum()) == channels * 9  # every weight of the filter is drawn once
    pixels = render(fig, tmp_path)
    assert pixels.std() > 20


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.zeros((4, 3, 3)), r"4 dimensions \(F, C, kh, kw\)"),
        (np.zeros((0, 3, 3, 3)), "empty"),
        (np.full((2, 1, 3, 3), np.nan), "NaN"),
    ],
)
def test_show_filters_bad_input(weights, message):
    with pytest.raises(ValueError, match=message):
        show_filters(weights)


# ----------------------------------------------------------------------------------- show_feature_maps


def test_show_feature_maps(tmp_path):
    maps = torch.randn(6, 10, 10, generator=torch.Generator().manual_seed(0))
    maps[5] = 0.0  # a dead channel is drawn, not an error
    fig = show_feature_maps(maps, ncols=3)
    axes = image_axes(fig)
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes] == [f"ch {i}" for i in range(6)]
    assert distinct_positions(axes) == (3, 2)
    np.testing.assert_allclose(axes[2].images[0].get_array(), maps[2].numpy(), rtol=1e-6)
    pixels = render(fig, tmp_path)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_show_feature_maps_accepts_a_batch_of_one():
    assert len(image_axes(show_feature_maps(torch.rand(1, 4, 5, 5, requires_grad=True)))) == 4


@pytest.mark.parametrize(
    "maps, message",
    [
        (np.zeros((5, 5)), r"\(C, H, W\)"),
        (np.zeros((2, 4, 5, 5)), "batch of several"),
        (np.zeros((0, 5, 5)), "empty"),
        (np.full((2, 5, 5), np.nan), "NaN"),
    ],
)
def test_show_feature_maps_bad_input(maps, message):
    with pytest.raises(ValueError, match=message):
        show_feature_maps(maps)


# -------------------------------------------------------------------------------- plot_training_curves

HISTORY = {
    "train_loss": [1.2, 0.8, 0.5, 0.4],
    "train_acc": [0.50, 0.70, 0.82, 0.88],
    "val_loss": [1.3, 0.9, 0.7, 0.65],
    "val_acc": [0.45, 0.65, 0.75, 0.78],
    "lr": [1e-3] * 4,
    "epoch_time": [0.1] * 4,
}


def test_training_curves_two_panels_with_train_and_val(tmp_path):
    fig = plot_training_curves(HISTORY)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "val"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), HISTORY["train_loss"])
    np.testing.assert_allclose(loss_ax.get_lines()[1].get_ydata(), HISTORY["val_loss"])
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_ydata(), HISTORY["val_acc"])
    np.testing.assert_array_equal(acc_ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])
    assert loss_ax.get_xlabel() == "epoch"
    assert render(fig, tmp_path).std() > 10


def test_training_curves_without_validation():
    history = dict(HISTORY, val_loss=[], val_acc=[])
    fig = plot_training_curves(history)
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]


def test_training_curves_from_train(tmp_path):
    from eep590_utils import train

    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    history = train(torch.nn.Linear(2, 2), loader, loader, epochs=2, progress=False, device="cpu")
    fig = plot_training_curves(history)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    render(fig, tmp_path)


@pytest.mark.parametrize(
    "history, message",
    [
        ([1.0, 0.5], "dict"),
        ({"train_acc": [0.5]}, "no 'train_loss'"),
        ({"train_loss": [], "train_acc": []}, "empty"),
        ({"train_loss": [1.0, np.nan], "train_acc": [0.5, 0.6]}, "NaN"),
        ({"train_loss": [1.0, 0.5], "train_acc": [0.5]}, "1 entries but train_loss has 2"),
        (dict(HISTORY, val_loss=[1.0]), "val_loss.*1 entries"),
    ],
)
def test_training_curves_bad_input(history, message):
    with pytest.raises(ValueError, match=message):
        plot_training_curves(history)


# ------------------------------------------------------------------------------- plot_confusion_matrix

CM = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 6]])


def test_confusion_matrix_plot(tmp_path):
    fig = plot_confusion_matrix(CM, ["cat", "dog", "bird"])
    matrix_ax = image_axes(fig)[0]
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert [t.get_text() for t in matrix_ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in matrix_ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert matrix_ax.get_ylabel() == "true class" and matrix_ax.get_xlabel() == "predicted class"
    assert [t.get_text() for t in matrix_ax.texts] == [str(v) for v in CM.ravel()]
    np.testing.assert_array_equal(matrix_ax.images[0].get_array(), CM)
    pixels = render(fig, tmp_path)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_confusion_matrix_plot_normalised_rows():
    fig = plot_confusion_matrix(torch.tensor(CM), normalize=True)
    data = np.asarray(image_axes(fig)[0].images[0].get_array())
    np.testing.assert_allclose(data.sum(axis=1), 1.0)
    assert image_axes(fig)[0].texts[0].get_text() == f"{5 / 6:.2f}"
    assert [t.get_text() for t in image_axes(fig)[0].get_xticklabels()] == ["0", "1", "2"]


@pytest.mark.parametrize(
    "cm, names, message",
    [
        (np.zeros((2, 3)), None, r"square.*\(2, 3\)"),
        (np.zeros(3), None, "square"),
        (np.zeros((0, 0)), None, "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "NaN"),
        (np.array([[1, -1], [0, 1]]), None, "negative"),
        (CM, ["a", "b"], "2 class_names for a 3x3"),
    ],
)
def test_confusion_matrix_plot_bad_input(cm, names, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(cm, names)


# ---------------------------------------------------------------------------------------------- import


def test_importing_the_package_does_not_import_pyplot():
    code = "import sys, eep590_utils; print('matplotlib.pyplot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------ in a notebook (inline backend)

NOTEBOOK_STYLES = {
    "last_expression": "plot_training_curves(HISTORY)",
    "then_plt_show": "plot_training_curves(HISTORY); plt.show()",
    "plt_show_on_next_line": "plot_training_curves(HISTORY)\nplt.show()",
    "semicolon": "plot_training_curves(HISTORY);",
    "assigned": "fig = plot_training_curves(HISTORY)",
    "assigned_then_shown": "fig = plot_training_curves(HISTORY)\nfig",
    "other_helper_then_plt_show": "show_images(np.zeros((2, 8, 8)))\nplt.show()",
    "confusion_matrix_last": "plot_confusion_matrix(np.eye(3, dtype=int))",
}


@pytest.mark.slow
def test_notebook_shows_each_figure_exactly_once(monkeypatch):
    """Executed by a Jupyter kernel with the inline backend: every usual way of writing the cell shows one image."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel chooses Jupyter's default, the inline backend
    setup = ("%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
             "from eep590_utils import plot_confusion_matrix, plot_training_curves, show_images\n"
             f"HISTORY = {HISTORY!r}")
    cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(code) for code in NOTEBOOK_STYLES.values()]
    cells.append(nbformat.v4.new_code_cell("for _ in range(2):\n    plot_training_curves(HISTORY)"))
    cells.append(nbformat.v4.new_code_cell("len(plt.get_fignums())"))
    nb = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()

    def images(cell):
        return sum("image/png" in output.get("data", {}) for output in cell.outputs)

    assert [o.output_type for o in nb.cells[0].outputs if o.output_type == "error"] == []
    shown = {style: images(cell) for style, cell in zip(NOTEBOOK_STYLES, nb.cells[1:])}
    assert shown == {style: 1 for style in NOTEBOOK_STYLES}
    assert images(nb.cells[-2]) == 2, "a loop of two plots shows two figures"
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "0", "figures left open in pyplot after their cells"
