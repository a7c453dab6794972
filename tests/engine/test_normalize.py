"""Each transform, with the span it reports in the original text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from screening.engine.config import TransformsConfig, load_config
from screening.engine.normalize import Normalizer

ALL_ON = TransformsConfig()


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(ALL_ON)


# (original, expected compact form, transforms that fired over the whole text)
TRANSFORM_CASES = [
    ("ＡＢＣ１２３", "abc123", ["casefold", "fullwidth"]),
    ("①②③", "123", ["enclosed"]),
    ("⑴⒈➀❶", "1111", ["enclosed"]),
    ("㈠", "一", ["enclosed"]),
    ("Ⓐ𝐀", "aa", ["casefold", "enclosed"]),
    ("HeLLo", "hello", ["casefold"]),
    ("賭博", "赌博", ["t2s"]),
    ("頭髮", "头发", ["t2s"]),
    ("vх", "vx", ["homoglyph"]),  # Cyrillic х
    ("qq號", "qq号", ["t2s"]),
    ("ԛԛ", "qq", ["homoglyph"]),
    ("赌\u200b博", "赌博", ["invisible"]),
    ("赌\u2060\ufeff博", "赌博", ["invisible"]),
    ("赌*博", "赌博", ["noise"]),
    ("赌 博", "赌博", ["noise"]),
    ("赌。博", "赌博", ["noise"]),
    ("赌😀博", "赌博", ["noise"]),
    ("赌👍🏻博", "赌博", ["noise"]),
    ("赌1博", "赌博", ["noise"]),
    ("赌 12 博", "赌博", ["noise"]),
    ("加微信123456", "加微信123456", []),
    ("赌博", "赌博", []),
]


@pytest.mark.parametrize(("original", "compact", "fired"), TRANSFORM_CASES)
def test_transform(normalizer: Normalizer, original: str, compact: str, fired: list[str]) -> None:
    normalized = normalizer.normalize(original)
    assert normalized.compact == compact
    assert normalizer.transforms_in(normalized, 0, len(original)) == fired


@pytest.mark.parametrize(("original", "compact", "_"), TRANSFORM_CASES)
def test_every_compact_character_maps_back_to_its_source(
    normalizer: Normalizer, original: str, compact: str, _: list[str]
) -> None:
    normalized = normalizer.normalize(original)
    assert len(normalized.compact_map) == len(normalized.compact)
    assert list(normalized.compact_map) == sorted(normalized.compact_map)
    for i, source_index in enumerate(normalized.compact_map):
        folded_source, _ = normalizer.fold(original[source_index])
        assert normalized.compact[i] in folded_source


def test_span_of_a_word_split_by_noise_covers_the_noise(normalizer: Normalizer) -> None:
    text = "快来 赌😀博 吧"
    normalized = normalizer.normalize(text)
    start = normalized.compact.index("赌博")
    assert normalized.compact_span(start, start + 2) == (3, 6)
    assert text[3:6] == "赌😀博"


def test_expanding_characters_keep_the_map_aligned(normalizer: Normalizer) -> None:
    text = "ﬁ赌博"  # the ligature folds to two characters
    normalized = normalizer.normalize(text)
    assert normalized.compact == "fi赌博"
    assert normalized.compact_span(2, 4) == (1, 3)


def test_repeats_collapse_with_span_over_the_whole_run(normalizer: Normalizer) -> None:
    text = "赌赌赌博博!"
    normalized = normalizer.normalize(text)
    assert normalized.collapsed == "赌博"
    assert normalized.collapsed_span(0, 2) == (0, 5)


# (text, collapsed form): stutters are squeezed, a doubled character that is a word of its
# own (妈妈, 谢谢) is not — squeezing it would turn 他妈妈的 into 他妈的.
COLLAPSE_CASES = [
    ("他妈妈的", None),  # nothing to squeeze: no second pass at all
    ("其他妈妈的推荐", None),
    ("你妈妈逼你学习", None),
    ("谢谢你", None),
    ("爸爸哥哥都在", None),  # two doubled words side by side are still words
    ("开开心心", "开心"),  # AABB of a character that is no word doubled: squeezed
    ("他他他妈的", "他妈的"),  # a run of three is a stutter
    ("他他妈妈的", "他妈的"),  # a pair beside another repeat is a stutter
    ("他妈妈的的", "他妈的"),
    ("他妈妈妈的", "他妈的"),
    ("赌赌赌博博", "赌博"),
    ("赌赌博博", "赌博"),
    ("谢谢谢谢你", "谢你"),
    ("妈妈说赌赌赌博", "妈妈说赌博"),  # the word stays, the stutter goes
]


@pytest.mark.parametrize(("text", "collapsed"), COLLAPSE_CASES)
def test_repeat_collapsing_keeps_reduplicated_words(
    normalizer: Normalizer, text: str, collapsed: str | None
) -> None:
    normalized = normalizer.normalize(text)
    assert normalized.collapsed == collapsed
    if collapsed is not None:  # every collapsed character maps back over its whole run
        spans = [normalized.collapsed_span(i, i + 1) for i in range(len(collapsed))]
        assert "".join(text[s:e][0] for s, e in spans) == collapsed
        assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_no_collapsed_form_without_repeats(normalizer: Normalizer) -> None:
    assert normalizer.normalize("赌博").collapsed is None


def test_phrase_level_t2s_keeps_context(normalizer: Normalizer) -> None:
    # 乾 is 干 in 乾燥 but stays 乾 in 乾隆: a per-character table cannot know that.
    assert normalizer.normalize("乾隆乾燥").compact == "乾隆干燥"


def test_digits_not_between_han_are_kept(normalizer: Normalizer) -> None:
    assert normalizer.normalize("电话13812345678").compact == "电话13812345678"
    assert normalizer.normalize("买3个").compact == "买个"  # between Han: noise


@pytest.mark.parametrize(
    ("switch", "text", "compact"),
    [
        ("nfkc", "ＡＢ", "ａｂ"),
        ("casefold", "AB", "AB"),
        ("t2s", "賭博", "賭博"),
        ("homoglyph", "vх", "vх"),
        ("invisible", "赌\u200b博", "赌\u200b博"),
        ("noise", "赌 博", "赌 博"),
    ],
)
def test_each_transform_can_be_switched_off(switch: str, text: str, compact: str) -> None:
    normalizer = Normalizer(replace(ALL_ON, **{switch: False}))
    assert normalizer.normalize(text).compact == compact


def test_repeat_switch_off_leaves_no_collapsed_form() -> None:
    normalizer = Normalizer(replace(ALL_ON, repeat=False))
    assert normalizer.normalize("赌赌博").collapsed is None


def test_term_keys_use_the_message_normalisation(normalizer: Normalizer) -> None:
    assert normalizer.key("賭 博") == "赌博"
    assert normalizer.key("ＱＱ號") == "qq号"
    assert normalizer.collapse(normalizer.key("他妈妈")) == "他妈妈"  # 妈妈: a word, no stutter
    assert normalizer.collapse(normalizer.key("赌赌博")) == "赌博"


@pytest.mark.parametrize("text", ["快来 赌😀博 吧", "ﬁ赌,博", "a b c", "赌1博2，3赌", "。。赌博。。", "x"])
def test_span_lookup_without_the_map_agrees_with_the_map(normalizer: Normalizer, text: str) -> None:
    lazy = normalizer.normalize(text)
    spans = [lazy.compact_span(s, e) for s in range(len(lazy.compact)) for e in range(s + 1, len(lazy.compact) + 1)]
    full = normalizer.normalize(text)
    index = full.compact_map  # builds the map; spans now come from it
    assert spans == [(index[s], index[e - 1] + 1) for s in range(len(full.compact)) for e in range(s + 1, len(full.compact) + 1)]
    classes = normalizer.classes(full.folded)
    assert [lazy.is_kept(j) for j in range(len(lazy.folded))] == [c in "HLD" for c in classes]


@pytest.mark.parametrize("classes", ["NZ", "Z", "N", "H", "LD"])
def test_class_chars_agrees_with_char_class_in_every_plane(classes: str) -> None:
    """The regex is built by asking ``char_class`` in planes 0, 1 and 14 only; elsewhere
    it relies on what Unicode assigns there, checked here on a sample of every plane."""
    from screening.engine.characters import char_class, class_chars

    pattern = class_chars(classes)
    wrong = [
        hex(codepoint)
        for codepoint in range(0, 0x110000, 7)
        if not 0xD800 <= codepoint <= 0xDFFF
        and bool(pattern.match(chr(codepoint))) != (char_class(chr(codepoint)) in classes)
    ]
    assert wrong == []


def test_the_fast_paths_normalise_as_the_class_string_does() -> None:
    """Messages without digits and Han drop noise by one substitution and find their kept
    runs lazily; the spans must be those the class string gives."""
    normalizer = Normalizer(load_config().transforms)
    for text in ["赌 博！！", "加我 vx：abc", "你好\u200b世界", "ａｂｃ，１２３", "😀赌😀博😀", "。。。", "a b"]:
        normalized = normalizer.normalize(text)
        classes = normalizer.classes(normalized.folded)
        kept = [i for i, c in enumerate(classes) if c not in "NZ"]
        assert normalized.compact == "".join(normalized.folded[i] for i in kept)
        assert list(normalized.compact_map) == [normalized.folded_map[i] for i in kept]
        assert [normalized.is_kept(i) for i in range(len(classes))] == [
            c not in "NZ" for c in classes
        ]
