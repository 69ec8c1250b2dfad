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


def comparison_grid(rows: list[list[Image.Image]], headings: list[str], out: Path, cell: int = 128) -> None:
    """A grid like the paper's Figure 4: one row per image, one column per heading."""
    pad, top = 4, 18
    width = len(headings) * (cell + pad) + pad
    height = top + len(rows) * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, heading in enumerate(headings):
        draw.text((pad + c * (cell + pad), 3), heading, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            thumb = img.copy()
            thumb.thumbnail((cell, cell), Image.NEAREST)
            canvas.paste(thumb, (pad + c * (cell + pad), top + r * (cell + pad)))
    _save_png(canvas, out)


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
    """Loss and val mean IU against steps for each model: {label: (loss.tsv, mean_iu.tsv)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_iu) = plt.subplots(1, 2, figsize=(10, 3.5))
    for label, (loss_tsv, iu_tsv) in series.items():
        steps, loss = read_live_series(loss_tsv)
        window = max(1, len(loss) // 30)  # running mean so noisy per-step losses stay readable
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(steps[window - 1:], smooth, label=label)
        steps, iu = read_live_series(iu_tsv)
        ax_iu.plot(steps, [100 * v for v in iu], marker="o", label=label)
    ax_loss.set(xlabel="step", ylabel="train loss (running mean)", title="training loss")
    ax_iu.set(xlabel="step", ylabel="mean IU (%)", title="validation mean IU")
    ax_iu.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic.write_bytes(out, buf.getvalue())
