"""Engine throughput, memory and start-up against raw pyahocorasick (figures printed;
nothing here asserts a time).

    .venv/bin/python bench/engine.py [--seconds 2] [--repeat 3] [--lines 20000]

Everything is CPU time of one process (``time.process_time``, or a child's rusage from
``os.wait4``), so other work on the machine slows the figures less than wall time would;
each is measured ``--repeat`` times and printed as median (best), with the load average.
For the shipped lists and for the shipped lists padded to 100,000 terms:

- raw pyahocorasick over the raw text (the floor of this design: no normalising, no
  spans, no decision), and the ratio of every other figure to it, measured in the same run;
- the engine in-process, wordlists only, and with the model, batches of 256;
- ``screening scan --model none`` and ``screening scan`` (the model), start-up taken out:
  (CPU of N lines − CPU of one line) / (N − 1);
- start-up: CPU of ``scan`` of one line, with and without the model: cold (an empty
  cache directory: the model's weights and the compiled wordlist are derived and written)
  and warm (read back, what every later process does); max RSS of ``scan`` of N lines;
- where the memory goes (``--breakdown``, also printed at the end): RSS after each stage
  of building an engine in a fresh process, compiling the wordlist (so the sound-alike
  spellings show), with the automaton's own size and its keys by how they were derived.

The child processes get their own cache directory (``SCREENING_MODEL_CACHE``) and write
bytecode like an installed package (pip compiles it; an editable checkout run with
``PYTHONDONTWRITEBYTECODE`` would recompile the package in every process, ~0.15 s).

Targets (issue 15): scan --model none ≥ 0.10 of raw; engine in-process ≥ 60k msg/s;
scan with the model ≥ 0.045 of raw; 100k terms cost ≤ 20 % of the shipped list's
throughput; RSS ≤ 300 MB with 100k terms and the model; start-up ≤ 2 s CPU with the model
(≤ 3 s with 100k terms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ahocorasick  # noqa: E402

from screening.engine.config import load_config  # noqa: E402
from screening.engine.core import Engine  # noqa: E402
from screening.engine.tokenize import Tokenizer  # noqa: E402
from screening.engine.wordlist import Wordlist  # noqa: E402
from screening.settings import DEFAULT_MODEL, Settings  # noqa: E402

SEED = 20261123
SHARED_COMMENTS = REPO.parent / "shared" / "data" / "ced" / "comments_benign.jsonl"
BATCH = 256


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


def measured_texts(rng: random.Random) -> tuple[str, list[str]]:
    """The 20,000 CED comments when the shared data is beside the checkout (real chat-like
    text, what issue 15 measured), else the seed mix."""
    if SHARED_COMMENTS.is_file():
        lines = SHARED_COMMENTS.read_text(encoding="utf-8").splitlines()
        return "CED comments", [json.loads(line)["text"] for line in lines if line.strip()]
    return "seed mix", corpus(rng)


def write_padded_wordlists(size: int, rng: random.Random, directory: Path) -> Path:
    """The shipped wordlists plus synthetic 2–5 character terms up to ``size`` terms."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in (REPO / "wordlists").glob("*.txt"):
        (directory / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    missing = max(0, size - len(Wordlist.load(REPO / "wordlists").terms))
    synthetic = set()
    while len(synthetic) < missing:
        synthetic.add("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 5))))
    lines = "".join(f"{term} | review\n" for term in sorted(synthetic))
    (directory / "synthetic.txt").write_text(lines, encoding="utf-8")
    return directory


def cpu_rate(function: Callable[[list[str]], object], texts: list[str], seconds: float) -> float:
    """Messages per CPU-second of this process, ``function`` handed batches of 256."""
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for batch in batches:
            function(batch)
            done += len(batch)
    return done / (time.process_time() - start)


def raw_automaton(wordlist: Wordlist) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for term in wordlist.terms:
        automaton.add_word(term.text, term.text)
    automaton.make_automaton()
    return automaton


def raw_pass(automaton: ahocorasick.Automaton) -> Callable[[list[str]], object]:
    def run(batch: list[str]) -> int:
        found = 0
        for text in batch:
            for _ in automaton.iter(text):
                found += 1
        return found

    return run


def engine_pass(engine: Engine) -> Callable[[list[str]], object]:
    return lambda batch: engine.screen_batch([(None, text) for text in batch])


#: Runs a command and prints its CPU seconds and max RSS. Linux keeps a process's peak RSS
#: across fork and exec, so a child forked from this (large) process would report this
#: process's peak: the command is forked from this small launcher instead.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def child_scan(lines: Path, wordlists: Path, model: str, cache: Path) -> tuple[float, float]:
    """CPU seconds and max RSS (MB) of one ``screening scan`` of ``lines``."""
    command = [sys.executable, "-m", "screening.cli", "scan", str(lines), os.devnull,
               "--wordlists", str(wordlists), "--model", model]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SCREENING_MODEL_CACHE"] = str(cache)
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    if out[0] != "0":
        raise SystemExit(f"scan failed ({out[0]}): {' '.join(command)}")
    return float(out[1]), float(out[2])


def write_lines(texts: list[str], count: int, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps({"id": i, "text": texts[i % len(texts)]}, ensure_ascii=False))
            out.write("\n")
    return path


def breakdown(wordlists: Path, cache: Path | None) -> list[tuple[str, float]]:
    """RSS (MB) after each stage of building an engine with the model, in this process:
    with ``cache``, the compiled wordlist read from it (what every process but the first
    does), else compiled here (pypinyin and the sound-alike spellings then show)."""

    def rss() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    from screening.engine.compiled import VIAS
    from screening.engine.match import Matcher
    from screening.engine.normalize import Normalizer
    from screening.engine.phonetic import Phonetic

    stages = [("imports (engine, without numpy/scipy)", rss())]
    config = load_config()
    tokenizer = Tokenizer(config.tokenizer_backend)
    stages.append((f"tokenizer ({config.tokenizer_backend} dictionary)", rss()))
    normalizer = Normalizer(config.transforms)
    normalizer.normalize("預熱ＡＢＣ")
    stages.append(("normaliser tables", rss()))
    wordlist = Wordlist.load(wordlists)
    stages.append((f"term metadata ({len(wordlist.terms):,} parsed terms)", rss()))
    phonetic = Phonetic()
    if cache is None:
        phonetic.homophones("预热")  # pypinyin's dictionaries and the homophone index
        stages.append(("phonetic: pypinyin + homophone index", rss()))
    matcher = Matcher(wordlist, normalizer, tokenizer, phonetic, config.transforms, cache)
    automata = [a for a in (matcher._main, matcher._collapsed_extra) if a is not None]
    size = sum(a.get_stats()["total_size"] for a in automata) / 2**20
    keys = [0] * len(VIAS)
    for _, *codes in matcher._rows:
        keys[codes[0] >> 1 & 3] += 1
    spelled = ", ".join(f"{n:,} {via or 'surface'}" for via, n in zip(VIAS, keys, strict=True))
    how = "read from the cache" if cache is not None else "compiled"
    stages.append((f"automata + rows, {how}\n      ({size:.0f} MB of automaton nodes; keys: "
                   f"{spelled})", rss()))  # fmt: skip
    from screening.engine.classify import Classifier

    alive = [matcher, Classifier.load(DEFAULT_MODEL, tokenizer, Settings.from_env().model_cache)]
    stages.append(("model: numpy, scipy, vocabulary, weights (from their cache)", rss()))
    del alive
    return stages


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):>9,.0f} ({max(values):,.0f})"


def measure(args: argparse.Namespace, texts: list[str], lists: dict[str, Path],
            tmp: Path) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """Every figure, ``args.repeat`` times, per list: ``{list: {row: [values]}}``."""
    from screening.engine.parts import load_model

    config = load_config()
    tokenizer = Tokenizer(config.tokenizer_backend)  # as `scan` and the workers segment
    classifier = load_model(DEFAULT_MODEL, tokenizer)
    lines = write_lines(texts, args.lines, tmp / "lines.jsonl")
    one = write_lines(texts, 1, tmp / "one.jsonl")
    passes: dict[str, dict[str, Callable[[list[str]], object]]] = {}
    for label, directory in lists.items():
        wordlist = Wordlist.load(directory)
        passes[label] = {
            "raw pyahocorasick": raw_pass(raw_automaton(wordlist)),
            "engine, wordlists only": engine_pass(Engine(config, wordlist, tokenizer)),
            "engine with the model": engine_pass(Engine(config, wordlist, tokenizer, classifier)),
        }
        for run in passes[label].values():
            run(texts[:2000])  # fill the lazy per-character tables first
    # Lists interleaved within each repeat, so a change of load on the machine falls on
    # both columns alike.
    table: dict[str, dict[str, list[float]]] = {label: {} for label in lists}
    for _ in range(args.repeat):
        for label, directory in lists.items():
            rows = table[label]
            for row, run in passes[label].items():
                rows.setdefault(row, []).append(cpu_rate(run, texts, args.seconds))
            for model, row in (("none", "scan --model none"), (str(DEFAULT_MODEL), "scan")):
                cache = Path(tempfile.mkdtemp(dir=tmp, prefix="cache-"))
                cold, _ = child_scan(one, directory, model, cache)
                cpu_lines, rss = child_scan(lines, directory, model, cache)
                cpu_one, _ = child_scan(one, directory, model, cache)
                rows.setdefault(row, []).append((args.lines - 1) / (cpu_lines - cpu_one))
                rows.setdefault(f"start-up CPU s, {row}", []).append(cpu_one)
                rows.setdefault(f"start-up CPU s, cold cache, {row}", []).append(cold)
                rows.setdefault(f"max RSS MB, {row}", []).append(rss)
    return table


WIDE = 46


def report(table: dict[str, dict[str, list[float]]]) -> None:
    shipped, padded = table["shipped"], table["100k"]
    print(f"\n{'msg per CPU-second: median (best) ratio':<{WIDE}}{'shipped':>24}"
          f"{'100k terms':>24}{'100k/shipped':>14}")  # fmt: skip
    raw = statistics.median(shipped["raw pyahocorasick"])
    for row in shipped:
        if row.startswith(("start-up", "max RSS")):
            continue
        cells = [f"{summary(rows[row])} {statistics.median(rows[row]) / raw:5.3f}"
                 for rows in (shipped, padded)]  # fmt: skip
        scale = statistics.median(padded[row]) / statistics.median(shipped[row])
        print(f"{row:<{WIDE}}{cells[0]:>24}{cells[1]:>24}{scale:>14.2f}")
    print("(ratio: to raw pyahocorasick with the shipped list, same texts, same run)\n")
    for row in shipped:
        if row.startswith(("start-up", "max RSS")):
            cells = [f"{min(r[row]):.2f}–{max(r[row]):.2f}" for r in (shipped, padded)]
            print(f"{row:<{WIDE}}{cells[0]:>24}{cells[1]:>24}")
    print("\nissue 15 targets (medians; met or missed by how much):")
    for label, value, target, higher in targets(table, raw):
        met = value >= target if higher else value <= target
        verdict = "met" if met else f"missed by {abs(value - target) / target:.0%}"
        sign = "≥" if higher else "≤"
        print(f"  {label:<{WIDE + 4}}{value:>12,.3f}  {sign} {target:<10,}{verdict}")


def targets(
    table: dict[str, dict[str, list[float]]], raw: float
) -> list[tuple[str, float, float, bool]]:
    """``(what, measured, target, higher is better)`` for each target of issue 15."""
    shipped, padded = table["shipped"], table["100k"]

    def median(rows: dict[str, list[float]], row: str) -> float:
        return statistics.median(rows[row])

    def cost(row: str) -> float:
        return 1 - median(padded, row) / median(shipped, row)

    return [
        ("scan --model none, ratio to raw", median(shipped, "scan --model none") / raw, 0.10, True),
        ("engine in-process, wordlists only, msg/s", median(shipped, "engine, wordlists only"),
         60_000, True),
        ("scan with the model, ratio to raw", median(shipped, "scan") / raw, 0.045, True),
        ("100k terms: throughput cost, engine", cost("engine, wordlists only"), 0.20, False),
        ("100k terms: throughput cost, scan --model none", cost("scan --model none"), 0.20, False),
        ("max RSS MB, scan, 100k terms + model", median(padded, "max RSS MB, scan"), 300, False),
        ("start-up CPU s, scan with the model", median(shipped, "start-up CPU s, scan"), 2, False),
        ("start-up CPU s, scan, 100k terms + model", median(padded, "start-up CPU s, scan"), 3,
         False),
    ]  # fmt: skip


def long_messages() -> None:
    unit = "今天群里有人说周末一起去爬山，记得带水。"
    config = load_config()
    engine = Engine(config, Wordlist.load(REPO / "wordlists"), Tokenizer(config.tokenizer_backend))
    for length in (1_000, 100_000):
        text = (unit * (length // len(unit) + 1))[: length - 2] + "赌博"
        started = time.process_time()
        assert engine.screen(text).hits  # found at the very end (赌博 is a watch-level topic)
        elapsed = time.process_time() - started
        print(f"message of {length:>7,} characters: {elapsed * 1000:8.2f} ms CPU "
              f"({elapsed / length * 1e6:.2f} µs/char)")  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU time per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--lines", type=int, default=60_000, help="lines per scan run")
    parser.add_argument("--breakdown", help=argparse.SUPPRESS)  # child: memory by stage
    parser.add_argument("--cache", help=argparse.SUPPRESS)  # child: compiled wordlists
    args = parser.parse_args()
    if args.breakdown:
        cache = Path(args.cache) if args.cache else None
        print(json.dumps(breakdown(Path(args.breakdown), cache)))
        return
    rng = random.Random(SEED)
    name, texts = measured_texts(rng)
    average = sum(map(len, texts)) / len(texts)
    print(f"corpus: {name}, {len(texts):,} messages, average {average:.1f} characters; "
          f"load average {load()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as directory:
        tmp = Path(directory)
        lists = {"shipped": REPO / "wordlists",
                 "100k": write_padded_wordlists(100_000, rng, tmp / "100k")}  # fmt: skip
        report(measure(args, texts, lists, tmp))
        cache = tmp / "breakdown-cache"
        for title, extra in (
            ("compiling the wordlist (the first process)", []),
            ("the compiled wordlist read back (every later process)", ["--cache", str(cache)]),
        ):
            if extra:  # fill the cache first
                subprocess.run([sys.executable, __file__, "--breakdown", str(lists["100k"]),
                                *extra], capture_output=True, check=True, cwd=REPO)  # fmt: skip
            out = subprocess.run(
                [sys.executable, __file__, "--breakdown", str(lists["100k"]), *extra],
                capture_output=True, text=True, check=True, cwd=REPO,
            )
            print(f"\nRSS by stage, 100k terms and the model, fresh process, {title}:")
            before = 0.0
            for stage, mb in json.loads(out.stdout):
                print(f"  {stage:<60}{mb:7.0f} MB  (+{mb - before:.0f})")
                before = mb
    long_messages()
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
