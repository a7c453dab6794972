"""`policy simulate` replays verdict records as the workers counted them: under labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.cli.main import main
from screening.enforcement.policy import DEFAULT_POLICY_PATH


def test_simulate_counts_exported_verdict_records_under_their_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rumours the model alone blocked (no wordlist categories) reach a rumour-only rule."""
    t0 = 1_714_500_000
    label = {"category": "rumour", "decision": "block", "source": "model", "score": 0.998}
    records = [
        {"kind": "verdict", "at": t0 + n, "message_id": f"m{n}", "group_id": "g1",
         "user_id": f"u{n}", "detail": {"text": "x", "sent_at": t0 + n, "decision": "block",
                                        "labels": [label], "categories": {},
                                        "model_scores": {"rumour": 0.998, "fraud": 0.6}}}
        for n in range(2)
    ]  # fmt: skip
    data = tmp_path / "verdicts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    rumours = (
        '\n[[group.rules]]\nname = "rumours"\ncategories = ["rumour"]\ndecisions = ["block"]\n'
        'window = "1h"\nwarn = 2\nsuspend = 3\nrecommend_close = 4\n'
    )
    policy = tmp_path / "policy.toml"
    raw = DEFAULT_POLICY_PATH.read_text("utf-8")
    policy.write_text(raw.replace("\n[[group.classes]]", rumours + "\n[[group.classes]]", 1), "utf-8")
    assert main(["policy", "simulate", str(data), "--policy", str(policy)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["reason"].split(":")[0]) for r in rows] == [("group_warning", "rumours")]
