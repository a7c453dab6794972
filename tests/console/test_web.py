"""Shared page helpers: masking user ids."""

from __future__ import annotations

from screening.console.web import mask


def test_a_mask_is_stable_and_hides_the_id() -> None:
    assert mask("u-12345") == mask("u-12345") != mask("u-12346")
    assert "12345" not in mask("u-12345") and mask("u-12345").startswith("u#")
    assert mask(None) == mask("") == "-"
