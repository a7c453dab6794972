"""Matching: every mode, allow-list overrides, spans in the original text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from screening.engine.config import load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import WordlistError


def hits(engine: Engine, text: str) -> list[tuple[str, int, int, str, tuple[str, ...]]]:
    return [(h.term, h.start, h.end, h.matched, h.transforms) for h in engine.screen(text).hits]


# (text, expected hits as (term, start, end, matched, transforms))
CASES = [
    ("快来赌博", [("赌博", 2, 4, "赌博", ())]),
    ("賭博", [("赌博", 0, 2, "賭博", ("t2s",))]),
    ("赌*博", [("赌博", 0, 3, "赌*博", ("noise",))]),
    ("赌 博", [("赌博", 0, 3, "赌 博", ("noise",))]),
    ("赌。博", [("赌博", 0, 3, "赌。博", ("noise",))]),
    ("赌😀博", [("赌博", 0, 3, "赌😀博", ("noise",))]),
    ("赌\u200b博", [("赌博", 0, 3, "赌\u200b博", ("invisible",))]),
    ("赌赌赌博博", [("赌博", 0, 5, "赌赌赌博博", ("repeat",))]),
    ("百家樂", [("百家乐", 0, 3, "百家樂", ("t2s",))]),
    ("ＢＡＩ家乐", []),  # latin pinyin only for terms that opt in
    # pinyin: whole latin words only
    ("dubo", [("赌博", 0, 4, "dubo", ("pinyin",))]),
    ("来 du bo 吗", [("赌博", 2, 7, "du bo", ("noise", "pinyin"))]),
    ("DUBO", [("赌博", 0, 4, "DUBO", ("casefold", "pinyin"))]),
    ("dubois", []),
    ("xbingdu", []),  # 冰毒 in pinyin must be a whole word, not the end of another
    ("卖bingdu", [("冰毒", 1, 7, "bingdu", ("pinyin",))]),
    # homophones: exact reading with tone
    ("堵博", [("赌博", 0, 2, "堵博", ("homophone",))]),
    ("睹博", [("赌博", 0, 2, "睹博", ("homophone",))]),
    ("我在读博", []),  # dú ≠ dǔ
    ("傻逼", [("傻逼", 0, 2, "傻逼", ())]),
    ("傻比", []),  # bǐ ≠ bī
    # allow-list
    ("三黄片", []),
    ("看黄片", [("黄片", 1, 3, "黄片", ())]),
    ("三黄片和黄片", [("黄片", 4, 6, "黄片", ())]),
    ("他妈妈说", []),
    ("他妈的", [("他妈", 0, 2, "他妈", ())]),
    ("他他他妈的", [("他妈", 0, 4, "他他他妈", ("repeat",))]),
    # repeat collapsing never makes a term out of a doubled word (妈妈, 谢谢)
    ("他妈妈的", []),
    ("他他他妈妈的", [("他妈", 0, 5, "他他他妈妈", ("repeat",))]),
    ("赌赌赌博博", [("赌博", 0, 5, "赌赌赌博博", ("repeat",))]),
    ("谢谢你赌博", [("赌博", 3, 5, "赌博", ())]),
    # word mode via jieba tokens
    ("路口交通", []),
    ("口交", [("口交", 0, 2, "口交", ())]),
    # latin terms do not hit inside latin words
    ("usb接口", []),
    ("你是sb吧", [("sb", 2, 4, "sb", ())]),
    ("ＳＢ", [("sb", 0, 2, "ＳＢ", ("casefold", "fullwidth"))]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_hits(engine: Engine, text: str, expected: list[tuple]) -> None:
    assert hits(engine, text) == expected


def test_every_hit_span_is_original_text(engine: Engine) -> None:
    for text, _ in CASES:
        for hit in engine.screen(text).hits:
            assert text[hit.start : hit.end] == hit.matched


def test_separate_occurrences_are_separate_hits(engine: Engine) -> None:
    assert [(h.start, h.end) for h in engine.screen("赌博，再赌博").hits] == [(0, 2), (4, 6)]


@pytest.mark.parametrize(
    ("text", "span", "transforms"),
    [
        ("加我qq:12345678", (2, 13), ("noise",)),
        ("扣扣 87654321", (0, 11), ("noise",)),
        ("电话13812345678", (2, 13), ()),
        ("电话 138-1234-5678", (3, 16), ("noise",)),
        ("电话一三八一二三四五六七八", (2, 13), ("numerals",)),
        ("电话①③⑧１２３４５６７８", (2, 13), ("enclosed", "fullwidth")),
    ],
)
def test_contact_patterns(engine: Engine, text: str, span: tuple[int, int], transforms) -> None:
    (hit,) = engine.screen(text).hits
    assert (hit.category, hit.start, hit.end, hit.transforms) == (
        "contact_diversion",
        *span,
        transforms,
    )
    assert hit.source.startswith("pattern:")


@pytest.mark.parametrize("text", ["价格1380元", "2024-11-23开会", "用微信支付就行", "qq音乐"])
def test_contact_patterns_leave_ordinary_numbers_alone(engine: Engine, text: str) -> None:
    assert engine.screen(text).hits == ()


def test_phonetic_matching_is_per_term_and_per_config(tokenizer: Tokenizer) -> None:
    wordlist = Wordlist.from_files({"gambling.txt": "赌博 | block\n"})  # no pinyin/homophone
    plain = Engine(load_config(), wordlist, tokenizer)
    assert plain.screen("dubo 堵博").hits == ()
    opted_in = Wordlist.from_files({"gambling.txt": "赌博 | block | pinyin,homophone\n"})
    config = load_config()
    switched_off = replace(
        config, transforms=replace(config.transforms, pinyin=False, homophone=False)
    )
    assert Engine(switched_off, opted_in, tokenizer).screen("dubo 堵博").hits == ()
    assert len(Engine(config, opted_in, tokenizer).screen("dubo 堵博").hits) == 2


def test_term_that_is_only_noise_is_an_error_naming_its_line(tokenizer: Tokenizer) -> None:
    wordlist = Wordlist.from_files({"abuse.txt": "傻逼\n!!!\n"}, origin="wordlists/")
    with pytest.raises(WordlistError, match=r"wordlists/abuse.txt:2: .*empty after normalisation"):
        Engine(load_config(), wordlist, tokenizer)


def test_same_key_in_two_categories_hits_both(tokenizer: Tokenizer) -> None:
    wordlist = Wordlist.from_files({"drugs.txt": "溜冰 | review\n", "abuse.txt": "溜冰 | review\n"})
    engine = Engine(load_config(), wordlist, tokenizer)
    assert sorted(h.category for h in engine.screen("去溜冰").hits) == ["abuse", "drugs"]


def test_long_message_is_matched_end_to_end(engine: Engine) -> None:
    text = "今天天气很好。" * 5000 + "赌博"
    (hit,) = engine.screen(text).hits
    assert (hit.start, hit.end) == (len(text) - 2, len(text))


def test_characters_beyond_the_bmp_keep_spans_right(tokenizer: Tokenizer) -> None:
    """Matching runs on UTF-16 bytes; a character outside the BMP (𠮷, U+20BB7) takes
    two units there, and spans must still count characters."""
    wordlist = Wordlist.from_files({"fraud.txt": "𠮷野家 | review\n赌博 | block\n"})
    engine = Engine(load_config(), wordlist, tokenizer)
    text = "去𠮷野家😀吃饭赌博"
    assert [(h.term, h.start, h.end, h.matched) for h in engine.screen(text).hits] == [
        ("𠮷野家", 1, 4, "𠮷野家"),
        ("赌博", 7, 9, "赌博"),
    ]


# (text, terms hit): repeat collapsing squeezes stutters but never makes a term out of a
# doubled character that is a word of its own (妈妈, 爸爸, 哥哥, 谢谢).
REDUPLICATION_CASES = [
    ("他妈妈的手机坏了", []),
    ("其他妈妈的推荐", []),
    ("你妈妈逼你学习", []),
    ("你妈妈死了三年了", []),
    ("谢谢你的赌博科普", ["赌博"]),
    ("他他他妈的", ["他妈的"]),
    ("他他妈妈的的", ["他妈的"]),
    ("你你妈妈逼逼", ["你妈逼"]),
    ("赌赌赌博博", ["赌博"]),
]


@pytest.mark.parametrize(("text", "terms"), REDUPLICATION_CASES)
def test_repeat_collapsing_never_makes_a_term_out_of_a_reduplicated_word(
    tokenizer: Tokenizer, text: str, terms: list[str]
) -> None:
    wordlist = Wordlist.from_files(
        {"abuse.txt": "他妈的\n你妈逼\n你妈死了\n", "gambling.txt": "赌博\n"}
    )
    engine = Engine(load_config(), wordlist, tokenizer)
    assert [h.term for h in engine.screen(text).hits] == terms


# (text, [(term, severity, decision)]): an `aimed` term is `watch` — evidence that needs
# company — unless a target stands within AIM_WINDOW characters: then `review`.
AIMED_LIST = {
    "abuse.txt": "tmd | watch | word,aimed\n草泥马 | watch | substring,aimed\n脑残 | review\n"
}
AIMED_CASES = [
    ("中国老板就是TMD有钱", [("tmd", "watch")], "pass"),
    ("好想去看活的大酒神！[草泥马][草泥马]", [("草泥马", "watch")], "pass"),  # once
    ("草泥马 tmd 好热", [("草泥马", "watch")], "pass"),  # emphasis twice is no company
    ("tmd你给我等着", [("tmd", "review")], "review"),
    ("你们tmd有完没完", [("tmd", "review")], "review"),
    ("你！！！tmd", [("tmd", "review")], "review"),  # noise does not count
    ("@张三 tmd", [("tmd", "review")], "review"),
    ("楼主草泥马", [("草泥马", "review")], "review"),
    ("草泥马 脑残", [("草泥马", "watch"), ("脑残", "review")], "review"),  # company
    ("你好啊今天天气真不错tmd", [("tmd", "watch")], "pass"),  # 你 too far away
]


@pytest.mark.parametrize(("text", "found", "decision"), AIMED_CASES)
def test_aimed_terms_are_watch_unless_aimed_at_someone(
    tokenizer: Tokenizer, text: str, found: list[tuple[str, str]], decision: str
) -> None:
    engine = Engine(load_config(), Wordlist.from_files(AIMED_LIST), tokenizer)
    verdict = engine.screen(text)
    assert [(h.term, h.severity) for h in verdict.hits] == found
    assert verdict.decision == decision
    assert all(("aimed" in h.transforms) is (h.severity == "review") for h in verdict.hits if h.term != "脑残")


# (text, [(term, severity)], decision): a `topic` term names a category (赌博, 网赌) and is
# `watch` on its line: evidence that needs company, counted once per category — naming
# gambling twice is still one topic. (With a model, screening/engine/context.py counts
# it as review where the model sees the category.)
TOPIC_LIST = {
    "gambling.txt": "赌博 | watch | substring,topic\n网赌 | watch | substring,topic\n"
    "下注 | review\n",
    "drugs.txt": "毒品 | watch | substring,topic\n",
}
TOPIC_CASES = [
    ("网赌毁掉的家庭太多了", [("网赌", "watch")], "pass"),
    ("网赌就是赌博，别碰", [("网赌", "watch")], "pass"),  # one topic, named twice
    ("赌博，再赌博", [("赌博", "watch")], "pass"),
    ("赌博和毒品", [("赌博", "watch"), ("毒品", "watch")], "pass"),  # one per category
    ("网赌平台，今晚下注", [("网赌", "watch"), ("下注", "review")], "review"),  # company
]


@pytest.mark.parametrize(("text", "found", "decision"), TOPIC_CASES)
def test_topic_terms_are_counted_once_and_need_company(
    tokenizer: Tokenizer, text: str, found: list[tuple[str, str]], decision: str
) -> None:
    engine = Engine(load_config(), Wordlist.from_files(TOPIC_LIST), tokenizer)
    verdict = engine.screen(text)
    assert [(h.term, h.severity) for h in verdict.hits] == found
    assert verdict.decision == decision
    assert all(("topic" in h.transforms) is (h.term != "下注") for h in verdict.hits)


# (text, hits as (term, matched, severity)): a `pinyin` term also hits with some of its
# syllables in latin (whole syllables only), `initials` as its initials (3+ syllables).
EVASION_LIST = {
    "gambling.txt": "赌博 | review | pinyin\n百家乐 | block | initials\n",
    "abuse.txt": "他妈的 | review\n",
}
EVASION_CASES = [
    ("du博", [("赌博", "du博", "review")]),
    ("赌bo", [("赌博", "赌bo", "review")]),
    ("来 du 博 吗", [("赌博", "du 博", "review")]),
    ("赌BO", [("赌博", "赌BO", "review")]),
    ("d博", []),  # half a syllable is not a spelling
    ("赌boss", []),  # a latin syllable must end the latin word
    ("xdu博", []),
    ("他妈的", [("他妈的", "他妈的", "review")]),
    ("tmd", []),  # no `initials` on this term
    ("bjl开局了", [("百家乐", "bjl", "review")]),  # initials: at most review
    ("BJL", [("百家乐", "BJL", "review")]),
    ("abjl", []),
    ("baijiale", []),  # `initials` is not `pinyin`
]


@pytest.mark.parametrize(("text", "found"), EVASION_CASES)
def test_mixed_spellings_and_initials(tokenizer: Tokenizer, text: str, found: list[tuple]) -> None:
    engine = Engine(load_config(), Wordlist.from_files(EVASION_LIST), tokenizer)
    assert [(h.term, h.matched, h.severity) for h in engine.screen(text).hits] == found


@pytest.mark.parametrize("term", ["赌博", "sb", "傻b"])
def test_initials_of_a_short_term_are_refused_naming_the_line(tokenizer: Tokenizer, term: str) -> None:
    wordlist = Wordlist.from_files(
        {"gambling.txt": f"百家乐 | block | initials\n{term} | review | initials\n"}, origin="w/"
    )
    with pytest.raises(WordlistError, match=r"w/gambling.txt:2: mode `initials` needs a term of 3"):
        Engine(load_config(), wordlist, tokenizer)


def test_mixed_spellings_follow_the_pinyin_switch(tokenizer: Tokenizer) -> None:
    config = load_config()
    off = replace(config, transforms=replace(config.transforms, pinyin=False))
    engine = Engine(off, Wordlist.from_files(EVASION_LIST), tokenizer)
    assert engine.screen("du博 赌bo bjl").hits == ()


def test_a_batch_finds_what_each_message_finds_alone(engine: Engine) -> None:
    """The batch's one automaton pass over joined messages only picks which messages to
    look at: hits at either end of a message, in empty and stuttered messages, and keys
    that would run across two messages (赌 | 博) come out as when screened one by one."""
    texts = ["赌博", "快来赌", "博彩", "", "今天天气不错", "赌赌赌博博", "dubo", "加我微信",
             "du", "bo", "。。。", "三黄片", "你好" * 50 + "赌博"]  # fmt: skip
    normalized = [engine.normalizer.normalize(text) for text in texts]
    alone = [engine.matcher.find(text) for text in normalized]
    assert engine.matcher.find_batch(normalized) == alone
    assert sum(map(bool, alone)) >= 4
    for size in (1, 2, 5):
        for start in range(0, len(normalized), size):
            part = normalized[start : start + size]
            assert engine.matcher.find_batch(part) == alone[start : start + size]
