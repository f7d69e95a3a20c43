"""The console's SVG charts: well-formed, scaled to their values, accessible, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from amanat.console.charts import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Point,
    chart,
    nice_ceiling,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own SVG, not untrusted input


def coords(svg: ET.Element) -> list[tuple[float, float]]:
    line = svg.find(f"{SVG}polyline")
    assert line is not None
    return [tuple(map(float, pair.split(","))) for pair in line.attrib["points"].split()]  # type: ignore[misc]


def test_a_line_chart_is_well_formed_and_accessible() -> None:
    svg = parse(chart([Point("08:00", 1), Point("08:05", 3)], title="Payments in flight"))
    assert svg.tag == f"{SVG}svg"
    assert svg.attrib["role"] == "img"
    assert svg.attrib["aria-label"] == "Payments in flight"
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == "Payments in flight"
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and desc.text == "08:00: 1, 08:05: 3"


def test_points_scale_to_the_plot_area() -> None:
    svg = parse(chart([Point("a", 0), Point("b", 5), Point("c", 10)], title="t"))
    points = coords(svg)
    bottom, top = HEIGHT - BOTTOM, TOP
    assert [y for _, y in points] == [bottom, (bottom + top) / 2, top]  # top value is 10
    xs = [x for x, _ in points]
    slot = (WIDTH - LEFT - RIGHT) / 3
    assert xs == pytest.approx([LEFT + slot * 0.5, LEFT + slot * 1.5, LEFT + slot * 2.5], abs=0.1)
    ticks = [t.text for t in svg.iter(f"{SVG}text")]
    assert "0" in ticks and "10" in ticks  # the y axis
    assert {"a", "b", "c"} <= set(ticks)  # first, middle and last x labels


def test_the_top_of_the_axis_is_a_round_number_above_the_largest_value() -> None:
    svg = parse(chart([Point("a", 7), Point("b", 3)], title="t"))
    assert coords(svg)[0][1] == pytest.approx(TOP + (HEIGHT - BOTTOM - TOP) * 0.3)
    assert [nice_ceiling(v) for v in (0, 1, 2, 3, 7, 10, 11, 99, 120, 5001)] == [
        1, 1, 2, 5, 10, 10, 20, 100, 200, 10000,
    ]  # fmt: skip


def test_an_empty_series_draws_the_axes_and_says_so() -> None:
    svg = parse(chart([], title="Nothing"))
    assert svg.find(f"{SVG}polyline") is None
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "No data in this window" in texts
    assert svg.find(f"{SVG}desc").text == "no data"  # type: ignore[union-attr]


def test_bars_one_per_point_from_the_axis_up() -> None:
    svg = parse(chart([Point("a", 2), Point("b", 0), Point("c", 4)], title="t", kind="bars"))
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 3
    heights = [float(b.attrib["height"]) for b in bars]
    assert heights[1] == 0 and heights[2] == pytest.approx(2 * heights[0])
    for bar in bars:
        assert float(bar.attrib["y"]) + float(bar.attrib["height"]) == pytest.approx(
            HEIGHT - BOTTOM
        )


def test_every_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    markup = chart([Point(hostile, 1)], title=hostile, css_class='x" onload="y')
    assert "<script>" not in markup
    svg = parse(markup)  # still well-formed
    assert svg.attrib["aria-label"] == hostile
    assert svg.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
    assert "onload" not in svg.attrib
