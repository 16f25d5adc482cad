"""Geometry of the console's SVG charts, kept free of markup so it can be
tested; the templates' macros turn it into SVG elements.

Everything is in SVG user units (pixels at scale 1).
"""

import dataclasses
import datetime
import hashlib

# Slices of one allocation share a colour on every page; eight are enough
# to tell neighbours apart.
PALETTE_SIZE = 8


def colour_class(allocation_uuid):
    """``s0``..``s7``: a stable colour per allocation."""
    digest = hashlib.sha256((allocation_uuid or "").encode()).digest()
    return "s%d" % (digest[0] % PALETTE_SIZE)


@dataclasses.dataclass
class Segment:
    x: float
    width: float
    amount: int
    label: str
    css: str
    remote: bool


def slices(vgpus, total, width, amount_key):
    """Segments of one bar of ``width`` holding ``total`` (100 % of compute,
    or the memory capacity in MB), one per vGPU, drawn to scale.
    ``vgpus``: dicts with ``amount_key``, allocation_uuid and ``remote``."""
    segments = []
    x = 0.0
    for vgpu in vgpus:
        amount = vgpu[amount_key]
        share = width * amount / total if total > 0 else 0.0
        # A slice never draws past the bar, even when memory is oversubscribed.
        share = min(share, max(0.0, width - x))
        segments.append(Segment(x=round(x, 2), width=round(share, 2), amount=amount,
                                label=vgpu["allocation_uuid"],
                                css=colour_class(vgpu["allocation_uuid"]),
                                remote=bool(vgpu.get("remote"))))
        x += share
    return segments


def fraction_width(part, total, width):
    """Width of ``part`` in a bar of ``width`` holding ``total``."""
    if total <= 0:
        return 0.0
    return round(width * min(max(part, 0), total) / total, 2)


@dataclasses.dataclass
class Line:
    name: str
    css: str
    coords: list  # [(x, y)]: a marker each, so a single sample shows too

    @property
    def points(self):
        """"x,y x,y ..." for <polyline points=...>."""
        return " ".join("%.1f,%.1f" % xy for xy in self.coords)


@dataclasses.dataclass
class LineChart:
    width: int
    height: int
    y_max: float
    y_ticks: list  # [(y, label)]
    x_ticks: list  # [(x, label)]
    lines: list


def _parse(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def _polyline(points, key, start, span_s, y_max, width, height):
    coords = []
    for point in points:
        value = point.get(key)
        if value is None:
            continue
        x = width * (_parse(point["sampled_at"]) - start).total_seconds() / span_s
        y = height - height * min(value, y_max) / y_max
        coords.append((round(x, 1), round(y, 1)))
    return coords


def line_chart(points, series, y_max, now, span_s=3600, width=600, height=160, y_unit=""):
    """A chart of ``points`` (dicts with sampled_at) over the ``span_s``
    seconds before ``now``. ``series``: [(key, name, css)]; a series with
    no values (e.g. measured figures before agents report) has no line."""
    y_max = max(float(y_max), 1.0)
    start = now - datetime.timedelta(seconds=span_s)
    lines = []
    for key, name, css in series:
        drawn = _polyline(points, key, start, span_s, y_max, width, height)
        if drawn:
            lines.append(Line(name=name, css=css, coords=drawn))
    y_ticks = [(height - height * f, "%g%s" % (round(y_max * f), y_unit))
               for f in (0, 0.5, 1)]
    x_ticks = [(width * f, "-%d min" % round(span_s * (1 - f) / 60)) for f in (0, 0.5, 1)]
    x_ticks[-1] = (width, "now")
    return LineChart(width=width, height=height, y_max=y_max, y_ticks=y_ticks,
                     x_ticks=x_ticks, lines=lines)
