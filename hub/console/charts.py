"""Charts drawn on the server as inline SVG: no chart library, no network, no script.

Colours are SVG attributes, not CSS, so the strict content-security policy holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

COLOURS = {
    "good": "#2e9d5b",
    "warn": "#e3a03a",
    "bad": "#c9473f",
    "muted": "#b8c1cb",
    "accent": "#1d5fa6",
    "grid": "#e6eaef",
}
PRESENCE_TONE = {"online": "good", "stale": "warn", "offline": "bad"}


@dataclass(frozen=True)
class Segment:
    """A share of a bar: its size, tone (a COLOURS key) and the words of its tooltip."""

    value: float
    tone: str
    label: str


def _rect(x: float, y: float, w: float, h: float, tone: str, title: str) -> str:
    return (
        f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(w, 0):.2f}" height="{h:.2f}" '
        f'fill="{COLOURS[tone]}"><title>{escape(title)}</title></rect>'
    )


def stacked_bar(segments: Sequence[Segment], *, width: int = 240, height: int = 12) -> Markup:
    """One horizontal bar split by value, e.g. a unit's terminals online/stale/offline."""
    total = sum(s.value for s in segments)
    parts = [f'<rect width="{width}" height="{height}" rx="3" fill="{COLOURS["grid"]}"/>']
    x = 0.0
    for seg in segments:
        if total <= 0 or seg.value <= 0:
            continue
        w = width * seg.value / total
        parts.append(_rect(x, 0, w, height, seg.tone, seg.label))
        x += w
    summary = ", ".join(s.label for s in segments)
    return Markup(
        f'<svg class="chart bar" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(summary)}">{"".join(parts)}</svg>'
    )


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    state: str  # online, stale, offline


def presence_spans(
    transitions: Sequence[tuple[datetime, str]],
    start: datetime,
    end: datetime,
    first_state: str,
    since: datetime | None = None,
) -> list[Span]:
    """Turn presence changes (time, new state) into spans covering [start, end].

    Before `since` (enrolment) the terminal had no presence: that stretch is left blank.
    """
    if since is not None and since > start:
        start = min(since, end)
    spans: list[Span] = []
    state, since = first_state, start
    for at, new_state in sorted(transitions):
        if at <= start:
            state = new_state
            continue
        if at >= end:
            break
        spans.append(Span(since, at, state))
        state, since = new_state, at
    spans.append(Span(since, end, state))
    return [s for s in spans if s.end > s.start]


def presence_timeline(
    spans: Sequence[Span], start: datetime, end: datetime, zone: ZoneInfo, *, width: int = 900
) -> Markup:
    """A 24-hour style band: green online, amber stale, red offline, hour ticks below."""
    band_h, top, height = 26, 4, 52
    total = (end - start).total_seconds() or 1.0
    parts = [f'<rect x="0" y="{top}" width="{width}" height="{band_h}" fill="{COLOURS["grid"]}"/>']
    for span in spans:
        x = width * (span.start - start).total_seconds() / total
        w = width * (span.end - span.start).total_seconds() / total
        local = f"{span.start.astimezone(zone):%H:%M}–{span.end.astimezone(zone):%H:%M}"
        parts.append(
            _rect(
                x, top, w, band_h, PRESENCE_TONE.get(span.state, "muted"), f"{span.state} {local}"
            )
        )
    parts += _hour_ticks(start, end, zone, width, top + band_h)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Presence over time">{"".join(parts)}</svg>'
    )


def _hour_ticks(start: datetime, end: datetime, zone: ZoneInfo, width: int, y: int) -> list[str]:
    """About eight labelled ticks on whole local hours (or quarter hours for a short window)."""
    total = (end - start).total_seconds() or 1.0
    step = next(
        (s for s in (900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400) if total / s <= 8),
        86400,
    )
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (local - midnight).total_seconds()
    tick = midnight + timedelta(seconds=(elapsed // step + 1) * step)
    label = "%m-%d" if step >= 86400 else "%H:%M"
    parts: list[str] = []
    while tick < end:
        x = width * (tick - start).total_seconds() / total
        if 18 < x < width - 18:
            parts.append(
                f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 5}" stroke="#9aa5b1"/>'
                f'<text x="{x:.1f}" y="{y + 17}" text-anchor="middle">{tick:{label}}</text>'
            )
        tick += timedelta(seconds=step)
    return parts


def column_chart(
    values: Sequence[tuple[str, int]], *, width: int = 560, height: int = 150, unit: str = ""
) -> Markup:
    """Columns per label (e.g. payments per hour), with the largest value marked."""
    if not values:
        return Markup("")
    top, bottom = 14, 20
    plot_h = height - top - bottom
    peak = max(v for _, v in values) or 1
    slot = width / len(values)
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<line x1="0" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" '
        f'stroke="{COLOURS["grid"]}"/>'
    ]
    for i, (label, value) in enumerate(values):
        h = plot_h * value / peak
        x = i * slot + (slot - bar_w) / 2
        parts.append(_rect(x, top + plot_h - h, bar_w, h, "accent", f"{label}: {value}{unit}"))
        if len(values) <= 24 or i % max(1, len(values) // 12) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 5}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append(f'<text x="0" y="10">peak {peak}{escape(unit)}</text>')
    return Markup(
        f'<svg class="chart columns" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Columns, peak {peak}{escape(unit)}">{"".join(parts)}</svg>'
    )
