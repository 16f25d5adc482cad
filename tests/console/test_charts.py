"""SVG geometry of the console's charts."""

import datetime

from orionx_nova.gui import charts

NOW = datetime.datetime(2026, 11, 28, 13, 0, 0)


def _vgpu(amount, allocation="a", remote=False):
    return {"compute_pct": amount, "memory_mb": amount, "allocation_uuid": allocation,
            "remote": remote}


def test_slices_are_drawn_to_scale_side_by_side():
    segments = charts.slices([_vgpu(25, "a"), _vgpu(50, "b", remote=True)], 100, 400,
                             "compute_pct")
    assert [(s.x, s.width) for s in segments] == [(0.0, 100.0), (100.0, 200.0)]
    assert [s.remote for s in segments] == [False, True]
    assert segments[0].css == charts.colour_class("a")


def test_oversubscribed_slices_never_draw_past_the_bar():
    segments = charts.slices([_vgpu(80), _vgpu(80)], 100, 100, "memory_mb")
    assert segments[-1].x + segments[-1].width == 100.0


def test_colour_is_stable_per_allocation():
    assert charts.colour_class("x") == charts.colour_class("x")
    assert charts.colour_class("x").startswith("s")


def test_fraction_width_is_clamped():
    assert charts.fraction_width(50, 200, 300) == 75.0
    assert charts.fraction_width(500, 200, 300) == 300.0
    assert charts.fraction_width(5, 0, 300) == 0.0


def _point(minutes_ago, allocated, measured=None):
    stamp = (NOW - datetime.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"sampled_at": stamp, "allocated_compute_pct": allocated,
            "measured_compute_pct": measured}


def test_line_chart_places_points_in_time_and_value():
    chart = charts.line_chart(
        [_point(60, 0), _point(30, 50), _point(0, 100)],
        [("allocated_compute_pct", "allocated", "allocated")],
        y_max=100, now=NOW, width=600, height=100)
    assert chart.lines[0].points == "0.0,100.0 300.0,50.0 600.0,0.0"
    assert chart.lines[0].coords[1] == (300.0, 50.0)
    assert chart.x_ticks[-1] == (600, "now")


def test_a_series_without_values_draws_no_line():
    chart = charts.line_chart(
        [_point(10, 20)],
        [("allocated_compute_pct", "allocated", "allocated"),
         ("measured_compute_pct", "measured", "measured")],
        y_max=100, now=NOW)
    assert [line.name for line in chart.lines] == ["allocated"]
