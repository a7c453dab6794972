"""Classifier throughput: one message per call vs batches, end to end and model-only.

    .venv/bin/python bench/classify.py [MODEL_DIR] [--batch 512]

"End to end" is ``predict_batch`` (normalise, segment, score); "model only" starts from
featurised messages, the part that batching amortises. Messages are the seed corpus.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from screening.engine.classify import Classifier
from screening.engine.features import count_matrix, tfidf
from screening.evaluation.evaluate import read_examples
from screening.settings import DEFAULT_MODEL

SEED = Path(__file__).resolve().parent.parent / "models" / "seed"


def per_message(run, count: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / count * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(DEFAULT_MODEL))
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--messages", type=int, default=2048)
    args = parser.parse_args()
    started = time.perf_counter()
    classifier = Classifier.load(args.model)
    print(f"load {time.perf_counter() - started:.2f} s ({classifier.version})")
    texts = [e.text for path in sorted(SEED.glob("*.jsonl")) for e in read_examples(path)]
    texts = (texts * (1 + args.messages // len(texts)))[: args.messages]
    classifier.predict_batch(texts[:10])  # warm caches
    n, b = len(texts), args.batch
    single = per_message(lambda: [classifier.predict_batch([t]) for t in texts], n)
    batched = per_message(
        lambda: [classifier.predict_batch(texts[i : i + b]) for i in range(0, n, b)], n
    )
    docs = [classifier.featurizer.features(t) for t in texts]
    index, idf, weights = classifier._index, classifier._idf, classifier._weights

    def score(chunk: list[list[str]]) -> np.ndarray:
        return np.asarray(tfidf(count_matrix(chunk, index), idf) @ weights)

    model_single = per_message(lambda: [score([d]) for d in docs], n)
    model_batched = per_message(lambda: [score(docs[i : i + b]) for i in range(0, n, b)], n)
    print(f"end to end   ms/message: single {single:.3f}, batch of {b} {batched:.3f}")
    print(f"model only   ms/message: single {model_single:.3f}, batch of {b} {model_batched:.4f}")


if __name__ == "__main__":
    main()
