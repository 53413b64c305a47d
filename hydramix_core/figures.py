"""Figure helpers for the notebooks (matplotlib; imported lazily so the core needs no plotting)."""

from __future__ import annotations

import torch


def image_grid(images: torch.Tensor, *, rows: int, titles: list[str] | None = None, row_labels: list[str] | None = None,
               scale: float = 1.0, title: str | None = None):
    """Show ``images`` ([K,3,H,W], uint8 or float in [0,1]) row-major in a ``rows`` x K/rows grid."""
    import matplotlib.pyplot as plt

    columns = -(-len(images) // rows)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * scale, rows * scale), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_visible(False)
        if index < len(images):
            image = images[index]
            image = image.float() / 255 if image.dtype == torch.uint8 else image.float().clamp(0, 1)
            axis.imshow(image.permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            if titles and index < len(titles):
                axis.set_title(titles[index], fontsize=7)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def savefig(figure, folder, name: str) -> None:
    """Save a figure as PNG and SVG under ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        figure.savefig(folder / f"{name}.{ext}", dpi=150, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
