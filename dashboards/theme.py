"""Colours and plotly templates for the light and dark themes.

Every palette is colour-blind safe: risk is drawn on cividis (a sequential scale readable by
people with red-green colour blindness and in greyscale), categories use the Okabe-Ito palette.
"""

from __future__ import annotations

from typing import Any, Literal

import plotly.graph_objects as go

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = ("light", "dark")

# Okabe & Ito (2008), "Color Universal Design"; black is swapped for grey on dark backgrounds.
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)

RISK_SCALE = "Cividis"

STATUS_COLOURS: dict[str, str] = {
    "ok": "#009E73",
    "warning": "#E69F00",
    "critical": "#D55E00",
    "unknown": "#999999",
}

_SURFACE = {
    "light": {"paper": "#ffffff", "plot": "#ffffff", "text": "#1f2328", "grid": "#e4e7eb"},
    "dark": {"paper": "#1b1f24", "plot": "#1b1f24", "text": "#e6edf3", "grid": "#30363d"},
}


def normalise(theme: Any) -> Theme:
    """The theme a stored value names; anything unknown is light."""
    return "dark" if theme == "dark" else "light"


def category_colours(theme: Theme) -> list[str]:
    colours = list(OKABE_ITO)
    if theme == "dark":
        colours[-1] = "#BBBBBB"
    return colours


def surface(theme: Theme) -> dict[str, str]:
    return dict(_SURFACE[normalise(theme)])


def template(theme: Theme) -> go.layout.Template:
    """A plotly template for the theme: its surfaces, text, grid and Okabe-Ito colourway."""
    s = surface(theme)
    axis = {
        "gridcolor": s["grid"],
        "linecolor": s["grid"],
        "zerolinecolor": s["grid"],
        "tickcolor": s["grid"],
    }
    return go.layout.Template(
        layout={
            "paper_bgcolor": s["paper"],
            "plot_bgcolor": s["plot"],
            "font": {"color": s["text"], "family": "system-ui, -apple-system, sans-serif"},
            "colorway": category_colours(theme),
            "xaxis": axis,
            "yaxis": axis,
            "hoverlabel": {"font": {"family": "system-ui, sans-serif"}},
            "legend": {"bgcolor": "rgba(0,0,0,0)"},
        }
    )
