"""How the console shows money, time and card numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.console.rendering import cny, local_time, masked, pill


def test_fen_become_yuan_with_two_decimals():
    assert cny(0) == "0.00"
    assert cny(5) == "0.05"
    assert cny(123456789) == "1,234,567.89"
    assert cny(-1050) == "-10.50"


def test_times_show_in_shanghai_with_utc_in_the_tooltip():
    shown = local_time(datetime(2026, 11, 29, 20, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    assert ">2026-11-30 04:30:00</time>" in shown
    assert 'title="2026-11-29 20:30:00 UTC"' in shown


def test_full_card_numbers_never_reach_a_page():
    assert masked("card 6231701234567515") == "card 623170******7515"
    assert masked("623170******7515") == "623170******7515"


def test_status_pills_carry_tone_and_word():
    assert 'class="pill pill-good">Online<' in pill("online")
    assert 'class="pill pill-warn">Stale<' in pill("stale")
    assert 'class="pill pill-bad">Offline<' in pill("offline")
    assert "Dead lettered" in pill("dead_lettered")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_console_pages_carry_a_strict_content_security_policy(browser):
    answer = browser().get("/console/login")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_assets_are_served_by_the_hub(browser):
    client = browser()
    for name, kind in (("console.css", "text/css"), ("console.js", "text/javascript")):
        answer = client.get(f"/console/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert client.get("/console/static/..%2Fservice.py").status_code == 404


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_unknown_console_address_is_an_html_404(browser):
    answer = browser().get("/console/no/such/page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Check the address" in answer.text
