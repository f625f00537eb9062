"""Bar charts laid out for inline SVG (no script, no style attribute): the usage tab's daily
charts and the analytics pages' monthly ones share this layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any


@dataclass
class ChartBar:
    #: the day (or the first day of the month) the bar stands for
    day: date
    #: its value: units of usage, or an amount in major units
    units: Decimal
    x: float
    y: float
    height: float
    future: bool
    #: what hovering the bar says
    text: str


@dataclass
class BarLayout:
    """Bars, value ticks and date labels of one chart, in SVG user units."""

    bars: list[ChartBar]
    ticks: list[tuple[float, str]]
    labels: list[tuple[float, str]]
    bar_width: float

    WIDTH = 480
    HEIGHT = 150
    LEFT = 44
    RIGHT = 8
    TOP = 10
    BOTTOM = 24

    @property
    def baseline(self) -> float:
        return self.HEIGHT - self.BOTTOM

    @classmethod
    def layout(
        cls,
        series: list[tuple[date, Decimal]],
        *,
        today: date,
        value_text: Callable[[Decimal], str],
        label_text: Callable[[date], str],
        bar_text: Callable[[date, Decimal, bool], str],
    ) -> dict[str, Any]:
        """The layout of `series` (a bar per date; those after `today` marked future), as the
        keyword arguments of a BarLayout: a subclass adds its own fields to them. The axis
        shows `value_text` of values, `label_text` of dates; a bar's hover text is `bar_text`
        of its date, value and whether it is in the future."""
        plot_width = cls.WIDTH - cls.LEFT - cls.RIGHT
        plot_height = cls.HEIGHT - cls.TOP - cls.BOTTOM
        top = nice_ceiling(max((units for _day, units in series), default=Decimal(0)))
        slot = plot_width / max(len(series), 1)
        bar_width = max(slot * 0.72, 1.0)
        bars = []
        for index, (day, units) in enumerate(series):
            height = float(units / top) * plot_height if top else 0.0
            height = max(height, 1.5) if units > 0 else 0.0
            bars.append(
                ChartBar(
                    day=day,
                    units=units,
                    x=round(cls.LEFT + index * slot + (slot - bar_width) / 2, 2),
                    y=round(cls.HEIGHT - cls.BOTTOM - height, 2),
                    height=round(height, 2),
                    future=day > today,
                    text=bar_text(day, units, day > today),
                )
            )
        ticks = [
            (round(cls.HEIGHT - cls.BOTTOM - plot_height * share, 2), value_text(top * share))
            for share in (Decimal(0), Decimal("0.5"), Decimal(1))
        ]
        every = max(1, -(-len(series) // 7))  # at most seven date labels: they must not touch
        labels = [
            (round(cls.LEFT + index * slot + slot / 2, 2), label_text(day))
            for index, (day, _units) in enumerate(series)
            if index % every == 0
        ]
        return {"bars": bars, "ticks": ticks, "labels": labels, "bar_width": round(bar_width, 2)}


def nice_ceiling(value: Decimal) -> Decimal:
    """A round axis maximum at or above `value` (1, 2, 5 × a power of ten); 1 when empty."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (value.adjusted())
    for step in (1, 2, 5, 10):
        if value <= magnitude * step:
            return magnitude * step
    return magnitude * 10


@dataclass
class MonthlyChart(BarLayout):
    """A bar per month of amounts in major units of `currency` (the analytics pages)."""

    title: str
    currency: str

    #: room for amounts such as "$20,000" on the axis
    LEFT = 76

    @classmethod
    def build(
        cls,
        title: str,
        currency: str,
        series: list[tuple[date, Decimal]],
        today: date,
        value_text: Callable[[Decimal], str],
    ) -> MonthlyChart:
        layout = cls.layout(
            series,
            today=today,
            # the axis shows round amounts: no zero cents
            value_text=lambda amount: value_text(amount).removesuffix(".00"),
            label_text=lambda month: f"{month:%b %y}",
            bar_text=lambda month, amount, _future: f"{month:%B %Y}: {value_text(amount)}",
        )
        return cls(title=title, currency=currency, **layout)
