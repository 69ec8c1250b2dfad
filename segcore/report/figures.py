"""Static PNG figures for the reports (readable offline, unlike `dvc plots show`'s Vega page)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segcore.core import atomic


def colorize(label: np.ndarray, palette: list[int]) -> Image.Image:
    """Palette image of a class map (void 255 gets the palette's 255 colour)."""
    img = Image.fromarray(label.astype(np.uint8), mode="P")
    img.putpalette(palette)
    return img.convert("RGB")


def classes_present(labels: list[np.ndarray], names: list[str], palette: list[int]) -> list[tuple[str, tuple]]:
    """(name, RGB) of every class that occurs in ``labels`` (void 255 excluded), in class order."""
    present = sorted(set().union(*(np.unique(a).tolist() for a in labels)) - {255})
    return [(names[c], tuple(palette[3 * c:3 * c + 3])) for c in present if c < len(names)]


def comparison_grid(rows: list[list[Image.Image]], headings: list[str], out: Path, cell: int = 128,
                    legend: list[tuple[str, tuple]] = ()) -> None:
    """A grid like the paper's Figure 4: one row per image, one column per heading, then a class legend."""
    pad, top, swatch = 4, 18, 12
    width = len(headings) * (cell + pad) + pad
    per_line = max(1, width // 110)  # legend entries per line, each about 110 px wide
    legend_height = -(-len(legend) // per_line) * (swatch + pad) + (pad if legend else 0)
    height = top + len(rows) * (cell + pad) + pad + legend_height
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, heading in enumerate(headings):
        draw.text((pad + c * (cell + pad), 3), heading, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            thumb = img.copy()
            thumb.thumbnail((cell, cell), Image.NEAREST)
            canvas.paste(thumb, (pad + c * (cell + pad), top + r * (cell + pad)))
    y0 = top + len(rows) * (cell + pad) + pad
    for i, (name, rgb) in enumerate(legend):
        x, y = pad + (i % per_line) * 110, y0 + (i // per_line) * (swatch + pad)
        draw.rectangle([x, y, x + swatch, y + swatch], fill=tuple(rgb), outline="black")
        draw.text((x + swatch + 4, y), name, fill="black")
    _save_png(canvas, out)


def panels_with_colorbar(panels: list[tuple[str, np.ndarray, str]], colorbar: str, out: Path,
                         panel_inches: float = 4.0) -> None:
    """One row of large image panels [(title, 2-D array, colormap)]; the panel titled ``colorbar`` gets a scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(panel_inches * len(panels), panel_inches + 0.6))
    for ax, (title, array, cmap) in zip(axes, panels):
        shown = ax.imshow(array, cmap=cmap, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
        if title == colorbar:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic.write_bytes(out, buf.getvalue())


def _save_png(img: Image.Image, out: Path) -> None:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic.write_bytes(out, buf.getvalue())


def read_live_series(path: Path) -> tuple[list[int], list[float]]:
    """(steps, values) from a dvclive metrics .tsv file."""
    steps, values = [], []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            steps.append(int(row["step"]))
            values.append(float(row[Path(path).stem]))
    return steps, values


def training_curves(series: dict[str, tuple[Path, Path]], out: Path) -> None:
    """Loss and val mean IU against steps for each model: {label: (loss.tsv, mean_iu.tsv)}.

    The steps are those training logged: a staged net's start where the net it started from ended
    (FCN-16s after FCN-32s), so the axis counts all training that led to it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_iu) = plt.subplots(1, 2, figsize=(10, 3.5))
    staged = False
    for label, (loss_tsv, iu_tsv) in series.items():
        steps, loss = read_live_series(loss_tsv)
        staged |= bool(steps) and steps[0] > 1
        window = max(1, len(loss) // 30)  # running mean so noisy per-step losses stay readable
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(steps[window - 1:], smooth, label=label)
        steps, iu = read_live_series(iu_tsv)
        ax_iu.plot(steps, [100 * v for v in iu], marker="o", label=label)
    axis = "step (staged nets continue from the net they started from)" if staged else "step"
    ax_loss.set(xlabel=axis, ylabel="train loss (running mean)", title="training loss")
    ax_iu.set(xlabel=axis, ylabel="mean IU (%)", title="validation mean IU")
    ax_iu.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic.write_bytes(out, buf.getvalue())
