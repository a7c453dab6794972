"""deploy/docker-compose.yml keeps Redis behind a password and off the network, and takes
every secret from deploy/.env rather than from the file (read as text: no YAML parser is
a dependency, and these are properties of the text anyway)."""

from __future__ import annotations

import re

from tests.fixtures import REPO

COMPOSE = (REPO / "deploy" / "docker-compose.yml").read_text("utf-8")


def _service(name: str) -> str:
    match = re.search(rf"^  {name}:\n((?:    .*\n|\n)*)", COMPOSE, re.MULTILINE)
    assert match, f"no service {name}"
    return match.group(1)


def test_redis_requires_a_password_from_the_env_file_and_listens_on_loopback_only() -> None:
    redis = _service("redis")
    assert "requirepass" in redis and "$$REDIS_PASSWORD" in redis
    assert "REDIS_PASSWORD: ${REDIS_PASSWORD:?" in redis  # no default: compose refuses
    ports = re.findall(r"ports: \[(.*)\]", redis)
    assert ports == ['"127.0.0.1:6379:6379"'], ports  # not 0.0.0.0
    assert "REDISCLI_AUTH" in redis  # the health check logs in too


def test_every_redis_url_carries_the_password_and_no_secret_is_written_in_the_file() -> None:
    body = "\n".join(line for line in COMPOSE.split("\nname:", 1)[1].splitlines()
                     if "REDIS_ADDR:" not in line)  # the exporter takes REDIS_PASSWORD apart
    urls = re.findall(r"rediss?://\S*", body)  # after the comments
    assert urls and all(u.startswith("redis://:${REDIS_PASSWORD:?") for u in urls), urls
    for secret in ("SCREENING_CALLBACK_SECRET", "SCREENING_SIGNING_KEY"):
        assert re.search(rf"^  {secret}: \${{{secret}:\?", COMPOSE, re.MULTILINE), secret
    assert "change-me" not in COMPOSE


def test_the_api_service_runs_serve_with_keys_from_a_secret_and_a_readiness_healthcheck() -> None:
    api = _service("api")
    assert 'command: ["screening", "serve"]' in api
    assert "SCREENING_API_KEYS_FILE: /run/secrets/api-keys" in api and "secrets: [api-keys]" in api
    assert "SCREENING_API_KEYS:" not in api  # no development keys in a deployment
    assert re.search(r"healthcheck:\n      test: \[.*http://127\.0\.0\.1:8080/readyz", api)
    assert "<<: *worker-env" in api  # the workers' Redis, records and callbacks
    assert re.search(r"^  api-keys:\n    file: \./api-keys$", COMPOSE, re.MULTILINE)
    assert re.search(r"^EXPOSE .*\b8080\b", (REPO / "Dockerfile").read_text("utf-8"), re.MULTILINE)
    prometheus = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text("utf-8")
    assert "job_name: screening-api" in prometheus and "names: [api]" in prometheus


def _seconds(value: str) -> float:
    return float(value[:-1]) * {"s": 1, "m": 60}[value[-1]]


def test_workers_get_longer_than_their_30_s_shutdown_before_sigkill() -> None:
    for name in ("worker", "api"):
        grace = re.search(r"stop_grace_period: (\d+[sm])", _service(name))
        assert grace and _seconds(grace.group(1)) > 30, name


def test_services_wait_for_healthy_dependencies_that_have_healthchecks() -> None:
    waits = re.findall(r"^      (\S+): \{condition: service_healthy\}", COMPOSE, re.MULTILINE)
    assert {"redis", "postgres", "worker", "prometheus", "alertmanager"} <= set(waits)
    for name in set(waits):
        assert "healthcheck:" in _service(name), f"{name} is waited on but has no healthcheck"
    assert "depends_on: [" not in COMPOSE  # a bare list waits for start, not health


def test_alertmanager_routes_the_alerts_and_exporters_feed_the_backend_rules() -> None:
    prometheus = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text("utf-8")
    assert "targets: [alertmanager:9093]" in prometheus
    assert "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in COMPOSE
    routes = (REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text("utf-8")
    assert "severity=\"page\"" in routes and "severity=\"ticket\"" in routes
    for job, target in (("redis", "redis-exporter:9121"), ("postgres", "postgres-exporter:9187")):
        assert f"job_name: {job}" in prometheus and target in prometheus
        assert _service(target.split(":")[0])
    assert "--enable-feature=expand-external-labels" in _service("prometheus")
    assert "RUNBOOK_BASE: ${RUNBOOK_BASE:?" in _service("prometheus")


def test_no_password_is_written_in_the_compose_file_and_only_the_api_listens_beyond_loopback(
) -> None:
    body = COMPOSE.split("\nname:", 1)[1]
    for line in body.splitlines():
        if re.search(r"PASSWORD:|postgresql://", line):
            assert "${" in line, line  # from deploy/.env, required
    assert not re.search(r"postgresql://\w+:[^$]", body)
    ports = re.findall(r'ports: \[(.*)\]', body)
    assert ports and all(p.startswith('"127.0.0.1:') for p in ports if p != '"8080:8080"'), ports
    assert re.findall(r'ports: \[(.*)\]', _service("api")) == ['"8080:8080"']
    init = (REPO / "deploy" / "postgres" / "init.sh").read_text("utf-8")
    assert "PASSWORD :'password'" in init and "$WORKER_DB_PASSWORD" in init
