"""The agent's signed client: free text becomes one path segment, or is refused before sending."""

from __future__ import annotations

import pytest

from devices.agent.hub_client import path_segment


@pytest.mark.parametrize(
    "text,segment",
    [
        ("MZ000123", "MZ000123"),
        ("MZ 000?1#2%", "MZ%20000%3F1%232%25"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("张伟", "%E5%BC%A0%E4%BC%9F"),  # ASCII on the wire, as the signature needs
    ],
)
def test_free_text_goes_as_one_percent_encoded_segment(text: str, segment: str) -> None:
    assert path_segment(text) == segment


@pytest.mark.parametrize("text", ["MZ/123", "/", "a/..", ""])
def test_a_slash_or_nothing_is_refused_because_no_encoding_keeps_it_one_segment(text: str):
    """The hub's server decodes %2F to / before routing: MZ%2F123 would be two segments."""
    with pytest.raises(ValueError):
        path_segment(text)
