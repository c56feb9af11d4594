"""Sliders for the notebooks, with a static figure that always renders.

``explore(draw, name, values, default)`` first draws a static grid -- ``draw`` at every value, side
by side -- which is what papermill, CI, nbconvert/HTML exports and GitHub show.  Then, in a kernel
where ipywidgets is importable, it adds an ``interact`` slider over the same values on top, so a
student in JupyterLab can move through them one at a time.  ``GLSCL_STATIC=1`` skips the slider.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence


def widgets_available() -> bool:
    """ipywidgets importable and not switched off by ``GLSCL_STATIC=1``."""
    if os.environ.get("GLSCL_STATIC", "0") not in ("0", "", "false", "False"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def explore(draw: Callable[[Any, Any], None], name: str, values: Sequence[Any], default: Optional[Any] = None,
            title: str = "", ncols: Optional[int] = None, panel: tuple[float, float] = (3.2, 2.6)):
    """Static grid of ``draw(value, ax)`` for every value, then a slider over ``values``.

    ``draw(value, ax)`` draws one panel into ``ax``.  Returns the ``interact`` object (None when
    the slider is skipped).
    """
    import matplotlib.pyplot as plt

    values = list(values)
    ncols = ncols or len(values)
    nrows = -(-len(values) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), squeeze=False)
    for ax, v in zip(axes.flat, values):
        draw(v, ax)
    for ax in list(axes.flat)[len(values):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()
    if not widgets_available():
        return None
    from ipywidgets import SelectionSlider, interact

    def one(**kw):
        fig1, ax1 = plt.subplots(figsize=(panel[0] * 1.6, panel[1] * 1.4))
        draw(kw[name], ax1)
        if title:
            fig1.suptitle(title, fontsize=10)
        plt.tight_layout()
        plt.show()

    start = default if default in values else values[len(values) // 2]
    return interact(one, **{name: SelectionSlider(options=values, value=start, description=name,
                                                  continuous_update=False)})
