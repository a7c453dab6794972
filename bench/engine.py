"""Engine throughput, scaling and memory (figures printed; nothing here asserts a time).

    .venv/bin/python bench/engine.py [--seconds 3]

Measures on one core:
- messages/s for the keyword path (normalise + match + decide) on a realistic mix built
  from the seed corpus (90 % benign, average ~30 characters, 5 % long messages), with the
  shipped
  wordlists padded to 1k and to 100k terms — the target is ≥ 20,000 msg/s and the 100k
  figure ≥ 0.8 of the 1k one;
- the same with every message also segmented, by jieba and by rjieba;
- time per message as the message grows to 100,000 characters (should be linear);
- resident memory of a process holding the 100k-term engine (target ≤ 300 MB).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from screening.engine.config import load_config  # noqa: E402
from screening.engine.core import Engine  # noqa: E402
from screening.engine.tokenize import Tokenizer  # noqa: E402
from screening.engine.wordlist import Wordlist  # noqa: E402

SEED = 20261123


def corpus(rng: random.Random, bad_share: float = 0.1) -> list[str]:
    """Benign seed messages plus ``bad_share`` prohibited ones (chat is mostly benign);
    one message in twenty is a long one, several messages joined."""
    benign, bad = [], []
    for path in sorted((REPO / "models" / "seed").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                (bad if record["labels"] else benign).append(record["text"])
    benign += Wordlist.load(REPO / "wordlists").benign
    texts = benign + rng.sample(bad, min(len(bad), int(len(benign) * bad_share / (1 - bad_share))))
    rng.shuffle(texts)
    return [
        "".join(rng.choices(texts, k=rng.randint(8, 20))) if i % 20 == 0 else text
        for i, text in enumerate(texts)
    ]


def padded_wordlist(size: int, rng: random.Random) -> Wordlist:
    """The shipped wordlists plus synthetic 2–5 character terms up to ``size`` terms."""
    shipped = Wordlist.load(REPO / "wordlists")
    files = {
        name: path.read_text(encoding="utf-8")
        for path in (REPO / "wordlists").glob("*.txt")
        for name in [path.name]
    }
    missing = max(0, size - len(shipped.terms))
    synthetic = {
        "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 5)))
        for _ in range(missing)
    }
    files["synthetic.txt"] = "".join(f"{term} | review\n" for term in synthetic)
    return Wordlist.from_files(files)


def rate(function: Callable[[list[str]], object], messages: list[str], seconds: float) -> float:
    """Messages per second of this process's CPU time (per core, whatever else runs),
    handing ``function`` batches of 100 as the workers do."""
    batches = [messages[i : i + 100] for i in range(0, min(len(messages), 2000), 100)]
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for batch in batches:
            function(batch)
            done += len(batch)
    return done / (time.process_time() - start)


def screen_all(engine: Engine) -> Callable[[list[str]], object]:
    return lambda batch: engine.screen_batch([(None, text) for text in batch])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    rng = random.Random(SEED)
    messages = corpus(rng)
    average = sum(map(len, messages)) / len(messages)
    print(f"corpus: {len(messages)} messages, average {average:.1f} characters, 10 % prohibited")

    config = load_config()
    tokenizer = Tokenizer("jieba")
    baseline_rss = rss_mb()
    results = {}
    for size in (1_000, 100_000):
        started = time.perf_counter()
        engine = Engine(config, padded_wordlist(size, rng), tokenizer)
        built = time.perf_counter() - started
        for text in messages:  # fill the lazy per-character tables first
            engine.screen(text)
        results[size] = rate(screen_all(engine), messages, args.seconds)
        blocked = sum(engine.screen(t).decision != "pass" for t in messages) / len(messages)
        print(
            f"{size:>7} terms: built in {built:.2f} s, keyword path {results[size]:,.0f} msg/s "
            f"per core ({blocked:.0%} of the mix not passed)"
        )
    print(f"100k/1k throughput ratio: {results[100_000] / results[1_000]:.2f} (target ≥ 0.8)")
    print(f"RSS with the 100k-term engine: {rss_mb():.0f} MB (before: {baseline_rss:.0f} MB)")

    for backend in ("jieba", "rjieba"):
        segmenter = Tokenizer(backend)

        def screen_and_segment(batch: list[str], segmenter: Tokenizer = segmenter) -> None:
            engine.screen_batch([(None, text) for text in batch])
            for text in batch:
                segmenter.tokenize(engine.normalizer.normalize(text).compact)

        print(f"with {backend} segmentation of every message: "
              f"{rate(screen_and_segment, messages, args.seconds):,.0f} msg/s")  # fmt: skip
    same = 0
    jieba, rjieba = Tokenizer("jieba"), Tokenizer("rjieba")
    for text in messages:
        a, b = jieba.cut(text), rjieba.cut(text)
        same += a == b
    print(f"rjieba cuts identical to jieba on {same / len(messages):.1%} of messages")

    unit = "今天群里有人说周末一起去爬山，记得带水。"
    for length in (100, 1_000, 10_000, 100_000):
        text = (unit * (length // len(unit) + 1))[:length - 2] + "赌博"
        started = time.process_time()
        verdict = engine.screen(text)
        elapsed = time.process_time() - started
        assert verdict.decision != "pass"
        print(f"message of {length:>7,} characters: {elapsed * 1000:8.2f} ms "
              f"({elapsed / length * 1e6:.2f} µs/char)")  # fmt: skip


if __name__ == "__main__":
    main()
