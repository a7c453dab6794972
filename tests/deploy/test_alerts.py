"""Alert rules and dashboard: promtool validates and unit-tests the rules (Debian package
`prometheus`), every metric they and the dashboard use exists, every alert has a runbook;
amtool (Debian package `prometheus-alertmanager`) checks the Alertmanager routes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from prometheus_client import CollectorRegistry

from screening.operations.metrics import ScreeningMetrics
from tests.fixtures import REPO
from tests.fixtures.pipeline import _unavailable, prometheus_tool
from workers.queue_metrics import QueueCollector, RedisQueues

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DRAMATIQ = {
    "dramatiq_messages_total",
    "dramatiq_message_errors_total",
    "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total",
    "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress",
}


def promtool() -> str:
    return prometheus_tool("promtool", "rule tests")


def run(*args: str) -> str:
    result = subprocess.run(args, cwd=DEPLOY / "prometheus", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_rules_are_valid() -> None:
    assert "SUCCESS" in run(promtool(), "check", "rules", "alerts.yml")


def test_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in run(promtool(), "test", "rules", "alerts_test.yml")


def test_prometheus_config_is_valid() -> None:
    assert "SUCCESS" in run(promtool(), "check", "config", "prometheus.yml")


def exposed_names() -> set[str]:
    """Every sample name the workers' /metrics can show."""
    registry = CollectorRegistry()
    ScreeningMetrics(registry)
    names = set(DRAMATIQ) | {"up"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for family in registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}

    class Fake:
        def __init__(self) -> None:
            self.replies: list[int] = []

        def llen(self, key: str) -> int:
            self.replies.append(0)
            return 0

        def lindex(self, key: str, index: int) -> None:
            return None

        def zrange(self, key: str, start: int, stop: int) -> list[bytes]:
            return []

        def pipeline(self, transaction: bool = True) -> Fake:
            self.replies = []
            return self

        def execute(self) -> list[int]:
            return self.replies

    for family in QueueCollector(RedisQueues(Fake()), ["screening"], Fake()).collect():
        names.add(family.name)
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\b((?:screening|dramatiq)_[a-z_]+)\b", text)) - {
        "screening_workers"  # the job name
    }


def test_rules_and_dashboard_use_only_metrics_that_exist() -> None:
    names = exposed_names()
    for path in (RULES, DEPLOY / "grafana" / "dashboard.json"):
        unknown = referenced(path.read_text(encoding="utf-8")) - names
        assert not unknown, f"{path.name} uses unknown metrics {sorted(unknown)}"


def test_dashboard_is_well_formed_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    uid = re.search(r"uid: (\S+)", provisioned).group(1)  # type: ignore[union-attr]
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid and target["expr"]


def test_every_alert_has_a_runbook_url_from_the_one_base_and_a_readme_section() -> None:
    text = RULES.read_text(encoding="utf-8")
    alerts = re.findall(r"- alert: (\w+)", text)
    urls = re.findall(r'runbook_url: "([^"]*)"', text)
    assert len(urls) == len(alerts) >= 15
    base = "{{ $externalLabels.runbook_base }}#"
    assert all(url.startswith(base) for url in urls), urls
    anchors = {url.removeprefix(base) for url in urls}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = {h.lower() for h in re.findall(r"^#### `?(\w+)`?", readme, re.MULTILINE)}
    assert anchors <= headings, f"runbook sections missing from README: {anchors - headings}"
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    assert "runbook_base: ${RUNBOOK_BASE}" in config


def test_the_new_alerts_are_covered_by_promtool_tests() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (RULES.parent / "alerts_test.yml").read_text()))
    for alert in ("ScreeningLatencyHigh", "ScreeningTrafficStopped", "ScreeningRedisDown",
                  "ScreeningRedisMemoryHigh", "ScreeningRedisPersistenceFailing",
                  "ScreeningPostgresDown", "ScreeningPostgresConnectionsHigh"):  # fmt: skip
        assert alert in tested


def amtool() -> str:
    binary = shutil.which("amtool")
    if binary is None:
        _unavailable("amtool not on PATH (apt-get install prometheus-alertmanager; .ci/run "
                     "installs it)", "Alertmanager config checks")  # fmt: skip
    return binary  # type: ignore[return-value]


ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"


def test_alertmanager_config_is_valid() -> None:
    result = subprocess.run([amtool(), "check-config", str(ALERTMANAGER)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_severity_the_rules_use_has_its_own_route() -> None:
    severities = set(re.findall(r"severity: (\w+)", RULES.read_text(encoding="utf-8")))
    assert severities == {"page", "ticket"}
    routed = {}
    for severity in severities:
        result = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
             f"severity={severity}", "alertname=ScreeningWorkerDown"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        routed[severity] = result.stdout.strip()
    assert routed == {"page": "on-call", "ticket": "tickets"}
