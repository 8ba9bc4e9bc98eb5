"""PNG figures without a display: one way to get pyplot and one way to save and free a figure."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (imported on first use: the core does not need it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: object, path: Path, dpi: int = 100, tight: bool = True) -> Path:
    """Lay out, write `path` (making its folder) and close the figure; returns the path."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
