"""The one way this package makes and saves a figure, shared by per-run plots and reports.

Matplotlib's object-oriented API only (``matplotlib.figure.Figure``), never ``pyplot``: it runs
headless with no backend choice and leaves no global figure state behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emnist_bench.rundir import atomic_path

DPI = 130
"""Resolution of every saved PNG."""


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure with its own Agg canvas (no pyplot, no global state).

    The canvas gives text measurements a renderer without re-rendering the whole figure.
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path) -> Path:
    """Writes ``fig`` to ``path`` as PNG, whole or not at all (``rundir.atomic_path``),
    creating the parent folders; returns the path."""
    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=DPI, format="png")
    return path


def epoch_axis(ax, epochs=None) -> None:
    """Whole epochs on x, a light grid, and room around a single epoch."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.grid(True, alpha=0.3)
    if epochs is not None and np.size(epochs) == 1:
        only = np.ravel(epochs)[0]
        ax.set_xlim(only - 0.5, only + 0.5)
        ax.set_xticks([only])
        return
    low, high = ax.get_xlim()
    if high - low < 2:
        middle = round((low + high) / 2)
        ax.set_xlim(middle - 1, middle + 1)
