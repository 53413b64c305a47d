"""Figure helpers for the notebooks (matplotlib; imported lazily so the core needs no plotting)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import HydraMixAugment
from .models import ClassPool


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


def savefig(figure, folder, name: str, *, svg: bool = True) -> None:
    """Save a figure as PNG (and SVG, for plots; image grids are PNG only) under ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "hydramix"}):  # stable SVG ids: reruns do not churn files
        for ext in ("png", "svg") if svg else ("png",):
            figure.savefig(folder / f"{name}.{ext}", dpi=150, bbox_inches="tight",
                           metadata={"Date": None} if ext == "svg" else None)


def mask_colors(masks: torch.Tensor) -> torch.Tensor:
    """Masks [B,N,h,w] -> RGB [B,3,h,w]: each image of the tuple in its own colour (blended where soft)."""
    palette = torch.tensor([[0.89, 0.10, 0.11], [0.22, 0.49, 0.72], [0.30, 0.69, 0.29], [1.00, 0.50, 0.00],
                            [0.60, 0.31, 0.64], [0.65, 0.34, 0.16]], device=masks.device)
    colors = palette[torch.arange(masks.shape[1], device=masks.device) % len(palette)]  # [N, 3]
    return torch.einsum("bnhw,nc->bchw", masks.float(), colors)


def mix_grid(run, images: torch.Tensor, labels: torch.Tensor, *, n_mix: int, examples: int = 6, seed: int = 0,
             classes: list[str] | None = None):
    """Rows of (the N inputs | their mask | the mix) for ``examples`` random tuples from one few-shot set."""
    generator = torch.Generator().manual_seed(seed)
    anchors = torch.randperm(len(images), generator=generator)[:examples]
    members = torch.cat([anchors[:, None], ClassPool(labels).draw(labels[anchors], n_mix - 1, generator)], 1)
    mixes, masks = run.generator.mix_tuples(images[members], run.segments[members], generator=generator, return_masks=True)
    size = images.shape[-1]
    mask_rgb = F.interpolate(mask_colors(masks.cpu()), size=(size, size), mode="nearest")
    tiles = []
    for row in range(len(members)):
        tiles += [images[i].float() / 255 for i in members[row]] + [mask_rgb[row], mixes[row].cpu()]
    titles = [f"input {i + 1}" for i in range(n_mix)] + ["mask", "mix"]
    row_labels = [classes[int(labels[a])] for a in anchors] if classes else None
    return image_grid(torch.stack(tiles), rows=len(members), titles=titles, row_labels=row_labels, scale=1.1,
                      title=f"HydraMix, N = {n_mix}: inputs, mask (colour = source image), generated mix")


def segment_colors(segments: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Label maps [B,h,w] -> RGB [B,3,h,w], one random colour per segment (the paper's Figure 2 style)."""
    palette = torch.rand(int(segments.max()) + 1, 3, generator=torch.Generator().manual_seed(seed))
    return palette[segments.long().cpu()].permute(0, 3, 1, 2)


def sample_sheet(run, images: torch.Tensor, labels: torch.Tensor, *, classes: list[str], class_ids: list[int],
                 originals: int = 4, generated: int = 10, seed: int = 0):
    """Per class: ``originals`` training images, their Felzenszwalb segments, and ``generated`` new
    images composed from those originals only (N drawn from the generator's own choices)."""
    rng = torch.Generator().manual_seed(seed)
    tiles = []
    size = images.shape[-1]
    for label in class_ids:
        members = torch.where(labels == label)[0][:originals]
        augment = HydraMixAugment(run.generator, images[members], labels[members], run.segments[members], p_gen=1.0,
                                  n_mix=run.config.n_mix)
        new = torch.cat([augment.generate(torch.tensor([label]), generator=rng) for _ in range(generated)])
        segments = F.interpolate(segment_colors(run.segments[members], seed), size=(size, size), mode="nearest")
        tiles += [images[i].float() / 255 for i in members] + list(segments) + list(new.cpu())
    titles = [f"original {i + 1}" for i in range(originals)] + [f"segments {i + 1}" for i in range(originals)] + \
             [f"new {i + 1}" for i in range(generated)]
    return image_grid(torch.stack(tiles), rows=len(class_ids), titles=titles, row_labels=[classes[c] for c in class_ids],
                      scale=1.0, title="Originals, their segments, and compositions generated from them")


def plain_log_ticks(axis, ticks, *, which: str = "x") -> None:
    """A log axis labelled only at ``ticks`` with plain numbers (5, 10, 20; not 6x10^0 minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    scale = axis.xaxis if which == "x" else axis.yaxis
    (axis.set_xscale if which == "x" else axis.set_yscale)("log")
    scale.set_major_locator(FixedLocator(list(ticks)))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    scale.set_major_formatter(formatter)
    scale.set_minor_locator(NullLocator())
    scale.set_minor_formatter(NullFormatter())


def paired_difference_plot(differences, *, title: str):
    """Each method's mean paired difference (points) with its 95 % bootstrap interval, one row per
    method and size (stats.paired_differences' table); the zero line is "no difference"."""
    import matplotlib.pyplot as plt

    rows = differences.sort_values(["samples_per_class", "difference"]).reset_index(drop=True)
    labels = [f"{r.method} (n={r.samples_per_class}, won {r.won}/{r.seeds})" for r in rows.itertuples()]
    figure, axis = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.2))
    centre = rows["difference"] * 100
    axis.errorbar(centre, range(len(rows)), xerr=[centre - rows["ci_low"] * 100, rows["ci_high"] * 100 - centre],
                  fmt="o", capsize=3, color="tab:blue")
    axis.axvline(0, color="grey", linestyle="--")
    axis.set_yticks(range(len(rows)), labels)
    axis.set(xlabel=f"accuracy minus {rows['reference'].iloc[0]} (points), 95 % paired bootstrap interval", title=title)
    figure.tight_layout()
    return figure


def performance_profile_plot(profile, *, title: str):
    """Fraction of runs above each accuracy, per method (stats.performance_profile's table)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for method, group in profile.groupby("method"):
        axis.plot(group["threshold"] * 100, group["fraction"], label=method)
    axis.set(xlabel="test accuracy threshold τ (%)", ylabel="fraction of runs with accuracy > τ", title=title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


# One colour per method in every figure (tab20's pairs: a generator method dark, its ablation light).
METHOD_COLORS = {
    "baseline": "#4d4d4d", "hydramix": "#1f77b4", "hydramix_direct": "#aec7e8", "chimeramix_grid": "#ff7f0e",
    "chimeramix_grid_direct": "#ffbb78", "chimeramix_seg": "#2ca02c", "chimeramix_seg_direct": "#98df8a",
    "mixup": "#d62728", "mixup_a0.2": "#ff9896", "zetamixup": "#9467bd", "randaugment": "#c5b0d5",
    "autoaugment": "#8c564b", "trivialaugment": "#c49c94", "cutmix": "#e377c2", "cutout": "#f7b6d2",
    "random_erasing": "#bcbd22", "harmonic": "#17becf",
}


def method_color(method: str) -> str:
    """The colour of ``method`` in every figure; a ``+autoaugment`` variant and any other method get
    a colour of their own from a fixed hash of the name (the same in every notebook and run)."""
    import zlib

    from matplotlib import colormaps

    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    colors = colormaps["tab20b"].colors
    rgb = colors[zlib.crc32(method.encode()) % len(colors)]
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb[:3])


def method_palette(methods) -> dict[str, str]:
    """``{method: colour}`` for seaborn's ``palette=``."""
    return {method: method_color(method) for method in methods}


def learning_curve_plot(summary, *, title: str, chance: float | None = None):
    """Mean test accuracy (%) against the training step per method, with the 95 % t-interval of the
    mean as a band (stats.curve_summary's table without a reference); ``chance``: a dotted line."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for method, group in summary.sort_values("step").groupby("method"):
        color = method_color(method)
        axis.plot(group["step"], group["mean"] * 100, marker="o", markersize=3, label=method, color=color)
        axis.fill_between(group["step"], group["ci_low"] * 100, group["ci_high"] * 100, color=color, alpha=0.15,
                          linewidth=0)
    if chance is not None:
        axis.axhline(chance * 100, color="grey", linestyle=":", label="chance")
    axis.set(xlabel="training step", ylabel="test accuracy (%)", title=title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
