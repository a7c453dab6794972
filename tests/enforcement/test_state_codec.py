"""Policy-state keys: ids come from the platform, or from whoever can send a message, so
no two subjects may spell the same key whatever characters their ids hold."""

from __future__ import annotations

import pytest

from screening.enforcement.state_codec import subject_key

# Pairs that collided when ids went into keys as they were: `{g:a}:m` is both the
# measures hash of group "a" and a prefix of group "a}:m"'s keys.
CRAFTED = [
    (("group", "a}:m"), ("group", "a")),
    (("group", "x}:rule:spam"), ("group", "x")),
    (("user", "1:2"), ("user", "1")),
    (("report", "3:g1:m1"), ("report", "3:g1")),
]


@pytest.mark.parametrize(("one", "other"), CRAFTED)
def test_no_subject_key_is_a_prefix_of_another_subjects(one: tuple, other: tuple) -> None:
    first, second = subject_key(*one), subject_key(*other)
    assert first != second
    for suffix in (":m", ":rule:spam", ":by:m1", ":credit", ":reporters"):
        assert not (first + suffix).startswith(second + ":") or first == second
        assert second + suffix != first + suffix


def test_keys_keep_the_id_readable_with_its_length() -> None:
    assert subject_key("group", "g1") == "screening:policy:{g:2:g1}"
