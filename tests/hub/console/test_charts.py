"""Server-drawn SVG charts: presence spans, stacked bars, columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.console.charts import (
    Segment,
    column_chart,
    presence_spans,
    presence_timeline,
    stacked_bar,
)

T0 = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_presence_changes_become_spans_covering_the_window():
    changes = [(T0 + timedelta(hours=2), "stale"), (T0 + timedelta(hours=3), "offline")]
    spans = presence_spans(changes, T0, T0 + timedelta(hours=4), "online")
    assert [(s.state, s.start.hour, s.end.hour) for s in spans] == [
        ("online", 0, 2),
        ("stale", 2, 3),
        ("offline", 3, 4),
    ]


def test_time_before_enrolment_is_left_blank():
    spans = presence_spans([], T0, T0 + timedelta(hours=4), "online", since=T0 + timedelta(hours=3))
    assert [(s.state, s.start.hour) for s in spans] == [("online", 3)]


def test_a_change_before_the_window_sets_the_first_state():
    spans = presence_spans(
        [(T0 - timedelta(hours=1), "offline")], T0, T0 + timedelta(hours=1), "online"
    )
    assert [s.state for s in spans] == ["offline"]


def test_timeline_colours_and_local_hour_labels():
    spans = presence_spans(
        [(T0 + timedelta(hours=12), "offline")], T0, T0 + timedelta(hours=24), "online"
    )
    svg = presence_timeline(spans, T0, T0 + timedelta(hours=24), SHANGHAI)
    assert 'fill="#2e9d5b"' in svg and 'fill="#c9473f"' in svg
    assert "<title>online 08:00–20:00</title>" in svg  # local time in the tooltip
    assert ">12:00</text>" in svg


def test_stacked_bar_splits_by_value_and_names_each_part():
    svg = stacked_bar([Segment(3, "good", "3 online"), Segment(1, "bad", "1 offline")], width=200)
    assert 'width="150.00"' in svg and 'width="50.00"' in svg
    assert 'aria-label="3 online, 1 offline"' in svg


def test_column_chart_scales_to_the_peak():
    svg = column_chart([("08", 2), ("09", 4)], width=200, height=120)
    assert "peak 4" in svg and "<title>09: 4</title>" in svg
