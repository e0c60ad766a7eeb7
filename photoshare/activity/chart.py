"""Downloads per day as the geometry of an SVG bar chart, drawn by the owner's page template.

Computed on the server because the page may run no third-party script (the Content-Security-Policy allows only
the site's own files), and an inline <svg> needs none: the template writes rect and text elements with these
numbers; colours come from owner.css classes (style attributes are refused by the policy too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 36, 22, 8  # room for the count axis, the date labels, and the highest label


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Bar]  # the bars whose date is written under the axis (a few, evenly spread)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)


def bar_chart(series: list[tuple[date, int]], *, max_labels: int = 6) -> Chart:
    """Bars for `series` (one per day, in order) scaled so the highest reaches the top; 0-day bars have no
    height. The count axis gets round ticks (0, and up to 4 more)."""
    plot_height, plot_width = HEIGHT - BOTTOM - TOP, WIDTH - LEFT
    peak = max((count for _, count in series), default=0)
    top = _nice_ceiling(peak)
    slot = plot_width / max(1, len(series))
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, (day, count) in enumerate(series):
        height = plot_height * count / top if top else 0.0
        bars.append(Bar(day, count, round(LEFT + i * slot + gap / 2, 2), round(HEIGHT - BOTTOM - height, 2),
                        round(slot - gap, 2), round(height, 2)))
    step = max(1, top // 4) if top else 1
    ticks = [Tick(value, round(HEIGHT - BOTTOM - plot_height * value / top, 2)) for value in range(0, top + 1, step)] if top else [Tick(0, HEIGHT - BOTTOM)]
    every = max(1, math.ceil(len(bars) / max_labels))
    return Chart(bars, ticks, bars[::every])


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 4, 5, 8 × 10^n (and multiples of 4 below 10) not below `value`: ticks stay whole."""
    if value <= 0:
        return 0
    if value <= 4:
        return 4 if value > 2 else value
    magnitude = 10 ** int(math.log10(value))
    for factor in (1, 2, 4, 5, 8, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude
