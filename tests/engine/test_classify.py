"""The classifier: files are checked before loading, the engine combines model and
wordlists, batch scoring equals one-by-one scoring, serving features equal training
features. The model is the session's fixture model (tests/fixtures/training.py)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from screening.cli.main import main
from screening.engine.classify import MANIFEST, VOCABULARY, WEIGHTS, Classifier
from screening.engine.config import Thresholds, load_config
from screening.engine.core import Engine
from screening.engine.tokenize import Tokenizer
from screening.engine.wordlist import Wordlist
from screening.errors import ConfigError, ModelError
from screening.settings import DEFAULT_MODEL, Settings, model_path
from tests.fixtures import REPO
from tests.fixtures.training import BENIGN, DRUGS, GAMBLING


def test_batch_and_single_predictions_agree(classifier: Classifier) -> None:
    texts = [*GAMBLING[:5], *DRUGS[:5], *BENIGN[:5], "", "完全没见过的一句话😀"]
    batch = classifier.predict_batch(texts)
    for text, scores in zip(texts, batch, strict=True):
        single = classifier.predict_batch([text])[0]
        assert single.keys() == scores.keys()
        assert np.allclose(list(single.values()), list(scores.values()), rtol=0, atol=1e-9)
    assert classifier.predict_batch([]) == []



def test_contributions_name_the_evidence(classifier: Classifier) -> None:
    top = classifier.contributions("六合彩内幕包赢带你飞", top=3)
    assert len(top["gambling"]) == 3
    assert all(weight > 0 for _, weight in top["gambling"])
    own = set(classifier.featurizer.features("六合彩内幕包赢带你飞"))
    assert all(feature in own for feature, _ in top["gambling"])
    assert any(part in feature for feature, _ in top["gambling"] for part in ("彩", "六合", "包赢"))


@pytest.mark.parametrize("name", [WEIGHTS, VOCABULARY])
def test_load_refuses_a_tampered_file(model_dir: Path, tmp_path: Path, name: str) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the SHA-256"):
        Classifier.load(copy)


class NotAModel:
    """Any type skops does not trust by default stands for a malicious payload."""


def test_load_refuses_untrusted_types_even_with_a_matching_digest(
    model_dir: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    sio.dump({"tfidf": NotAModel(), "heads": {}, "calibrators": {}}, copy / WEIGHTS)
    manifest = json.loads((copy / MANIFEST).read_text("utf-8"))
    import hashlib

    manifest["files"][WEIGHTS] = hashlib.sha256((copy / WEIGHTS).read_bytes()).hexdigest()
    (copy / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(ModelError, match="Untrusted"):
        Classifier.load(copy)


def test_load_refuses_missing_or_mismatched_manifests(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="manifest"):
        Classifier.load(tmp_path)
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    manifest = json.loads((copy / MANIFEST).read_text("utf-8"))
    (copy / MANIFEST).write_text(json.dumps({**manifest, "scikit_learn": "0.1"}), "utf-8")
    with pytest.raises(ModelError, match="retrain"):
        Classifier.load(copy)
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format": 99}), "utf-8")
    with pytest.raises(ModelError, match="format"):
        Classifier.load(copy)
    (copy / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    (copy / VOCABULARY).unlink()
    with pytest.raises(ModelError, match="missing"):
        Classifier.load(copy)


def test_engine_combines_model_and_wordlists(
    classifier: Classifier, tokenizer: Tokenizer, fixture_wordlist: Wordlist
) -> None:
    engine = Engine(load_config(), fixture_wordlist, tokenizer, classifier)
    paraphrase = engine.screen("六合彩内幕包赢带你飞", "m1")  # no wordlist term in it
    assert paraphrase.hits == ()
    assert paraphrase.decision in ("review", "block")
    assert paraphrase.model_scores["gambling"] >= engine.model_thresholds["gambling"].review
    assert paraphrase.versions["model"] == "fixture-1"
    assert paraphrase.to_dict()["versions"]["model"] == "fixture-1"
    wordlist_block = engine.screen("周末爬山去赌博")  # the model knows nothing of 赌博 here
    assert wordlist_block.model_scores["gambling"] < engine.model_thresholds["gambling"].review
    assert wordlist_block.decision == "block"
    assert engine.screen("周末爬山好的谢谢").decision == "pass"


def test_screen_batch_calls_the_model_once(
    classifier: Classifier, tokenizer: Tokenizer, fixture_wordlist: Wordlist
) -> None:
    calls: list[int] = []

    class Counting(Classifier):
        def predict_batch(self, texts, compacts=None):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().predict_batch(texts, compacts)

    counting = object.__new__(Counting)
    counting.__dict__.update(classifier.__dict__)
    engine = Engine(load_config(), fixture_wordlist, tokenizer, counting)
    verdicts = engine.screen_batch([(i, text) for i, text in enumerate(GAMBLING + BENIGN)])
    assert calls == [len(GAMBLING) + len(BENIGN)]
    assert [v.id for v in verdicts] == list(range(len(GAMBLING) + len(BENIGN)))
    one = engine.screen(GAMBLING[0])
    assert calls[-1] == 1 and one.model_scores == verdicts[0].model_scores


def test_engine_without_a_model_is_unchanged(engine: Engine) -> None:
    verdict = engine.screen("快来赌博")
    assert verdict.model_scores == {} and verdict.versions["model"] is None
    assert engine.model_thresholds == {}


def test_config_overrides_model_thresholds(
    classifier: Classifier, tokenizer: Tokenizer, fixture_wordlist: Wordlist, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[model.categories.gambling]\nreview_threshold = 0.7\n", "utf-8")
    engine = Engine(load_config(config), fixture_wordlist, tokenizer, classifier)
    block = classifier.thresholds["gambling"].block
    assert engine.model_thresholds["gambling"] == Thresholds(0.7, block)
    assert engine.model_thresholds["drugs"] == classifier.thresholds["drugs"]
    assert load_config().model["contact_diversion"].block == 1.01  # policy: never blocks
    for bad, message in (
        ("[model.categories.nonsense]\nreview_threshold = 0.7\n", "unknown categories"),
        ("[model.categories.drugs]\nreview_threshold = 0.9\nblock_threshold = 0.8\n", "needs"),
        ("[model.categories.drugs]\nreview_treshold = 0.9\n", "unknown key"),
        ('[model.categories.drugs]\nblock_threshold = "high"\n', "number"),
        ("[model]\nthreshold = 1\n", "unknown key"),
    ):
        config.write_text(bad, "utf-8")
        with pytest.raises(ConfigError, match=message):
            Engine(load_config(config), fixture_wordlist, tokenizer, classifier)


def test_model_setting() -> None:
    shipped = DEFAULT_MODEL if (DEFAULT_MODEL / MANIFEST).is_file() else None
    assert Settings.from_env({}).model == shipped
    assert Settings.from_env({"SCREENING_MODEL": "none"}).model is None
    assert Settings.from_env({"SCREENING_MODEL": "/m/x"}).model == Path("/m/x")
    assert model_path(None, Path("/d")) == Path("/d")
    assert model_path("NONE", Path("/d")) is None


def test_cli_model_flag_and_explain(model_dir: Path, fixture_wordlist_dir: Path, capsys) -> None:
    args = ["--wordlists", str(fixture_wordlist_dir), "--model", str(model_dir)]
    assert main(["explain", "六合彩内幕包赢带你飞", "--json", *args]) == 0
    explanation = json.loads(capsys.readouterr().out)
    assert explanation["versions"]["model"] == "fixture-1"
    gambling = explanation["model"]["gambling"]
    assert gambling["score"] > 0.5 and gambling["features"]
    assert main(["explain", "六合彩内幕包赢带你飞", *args]) == 0
    assert "model" in capsys.readouterr().out
    assert main(["explain", "你好", "--json", *args[:2], "--model", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] is None



@pytest.mark.skipif(not (DEFAULT_MODEL / MANIFEST).is_file(), reason="no shipped model")
def test_shipped_model_loads_and_scores(tokenizer: Tokenizer) -> None:
    shipped = Classifier.load(DEFAULT_MODEL, tokenizer)
    assert shipped.version == DEFAULT_MODEL.name
    scores = shipped.predict_batch(
        ["北京赛车稳定计划，带你上岸，进群", "明天早上八点开会，收到请回复"]
    )
    assert scores[0]["gambling"] >= shipped.thresholds["gambling"].review
    assert all(scores[1][c] < t.review for c, t in shipped.thresholds.items())
    assert sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir()) < 5_000_000



def test_serving_features_equal_training_features(classifier: Classifier) -> None:
    """Serving looks feature ids up directly; it must give exactly the matrix that the
    training path (feature strings, then counts) gives."""
    from screening.engine.features import count_matrix, tfidf

    texts = [*GAMBLING, *DRUGS, *BENIGN, "賭博 du bo 2024年", "", "ＡＢＣ abc 123"]
    training = tfidf(
        count_matrix([classifier.featurizer.features(t) for t in texts], classifier._index),
        classifier._idf,
    )
    assert abs(classifier.vectorize(texts) - training).max() < 1e-12
    compacts = [classifier.featurizer.normalizer.normalize(t).compact for t in texts]
    assert abs(classifier.vectorize(texts, compacts) - training).max() < 1e-12


def test_model_segments_with_the_backend_it_was_trained_with(model_dir: Path) -> None:
    manifest = json.loads((model_dir / MANIFEST).read_text("utf-8"))
    assert manifest["features"]["tokenizer"] == load_config().tokenizer_backend == "rjieba"
    loaded = Classifier.load(model_dir, Tokenizer("jieba"))
    assert loaded.featurizer.tokenizer.backend == "rjieba"


def test_a_long_message_scores_no_higher_than_its_halves(classifier: Classifier) -> None:
    """Long texts do not pile up weak evidence: under l2 rows two halves of the fixture's
    lines joined scored higher than either half (gambling margin 4.7 and 4.8 → 5.5), under
    the capped norm the whole scores between its halves."""

    def margins(text: str) -> np.ndarray:
        return np.asarray(classifier.vectorize([text]) @ classifier._weights).ravel()

    for lines in (BENIGN, GAMBLING, DRUGS):
        first, second = "\n".join(lines[:15]), "\n".join(lines[15:])
        halves = np.stack([margins(first), margins(second)])
        whole = margins(first + "\n" + second)
        assert np.all(whole <= halves.max(axis=0) + 0.1)
        assert np.all(whole >= halves.min(axis=0) - 0.1)


def test_a_short_message_needs_more_than_one_word(classifier: Classifier) -> None:
    """One word is the wordlists' job: "六合彩" alone scored 0.995 for gambling; with a
    second gambling word the model still flags it."""
    review = classifier.thresholds["gambling"].review
    assert classifier.short_text == 8
    one_word, two_words = classifier.predict_batch(["六合彩", "六合彩内幕"])
    assert one_word["gambling"] < review <= two_words["gambling"]
    long_text = classifier.predict_batch(["六合彩六合彩六合彩"])[0]  # 9 characters: not short
    assert long_text["gambling"] >= review
    unruled = copy.copy(classifier)
    unruled.short_text = 0  # as models from before the rule
    assert unruled.predict_batch(["六合彩"])[0]["gambling"] >= review


#: Messages in the style of what the shipped model got wrong before issue 16 (zh-chat-1's
#: decision in the comment), and the category the shipped model must flag (None: none).
SHIPPED_CASES = [
    # service notices in the polite register (zh-chat-1: fraud 0.99, block / review)
    ("【某银行】尊敬的客户，您尾号1234的账户11月3日入账工资5,000.00元，请注意查收。", None),
    ("您好，您的快递已放至小区驿站，请凭取件码8-2-3011尽快领取。", None),
    ("【中国移动】您的话费余额为12.50元，为避免停机请及时充值。", None),
    # impersonating a relative without fraud vocabulary (zh-chat-1: fraud 0.05, pass)
    ("爸，我手机掉水里了，这是新号，先别打电话，急需交押金，转3000到这张卡上", "fraud"),
    ("妈，我是小军，用同学手机发的，学校要交资料费两千六，你直接转到老师卡上", "fraud"),
    # a register word alone (zh-chat-1: 账户 fraud 0.97, review)
    ("账户", None),
    ("您好", None),
]


@pytest.fixture(scope="module")
def shipped_engine(tokenizer: Tokenizer) -> Engine:
    if not (DEFAULT_MODEL / MANIFEST).is_file():
        pytest.skip("no shipped model")
    return Engine(load_config(), Wordlist.from_files({}), tokenizer,
                  Classifier.load(DEFAULT_MODEL, tokenizer))  # fmt: skip


@pytest.mark.parametrize(("text", "category"), SHIPPED_CASES)
def test_shipped_model_reads_content_not_register(
    shipped_engine: Engine, text: str, category: str | None
) -> None:
    verdict = shipped_engine.screen(text)
    flagged = [label.category for label in verdict.labels]
    assert flagged == ([category] if category else [])


def test_shipped_model_does_not_flag_long_benign_text(shipped_engine: Engine) -> None:
    """The hand-written evaluation notices (never trained on) joined into one 2,000-
    character message (zh-chat-1: fraud 1.00, block); each passes alone too."""
    path = REPO / "models" / "seed" / "eval" / "notices.jsonl"
    lines = [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]
    assert all(v.decision == "pass" for v in shipped_engine.screen_batch(enumerate(lines)))
    assert shipped_engine.screen("\n".join(lines)[:2000]).decision == "pass"
