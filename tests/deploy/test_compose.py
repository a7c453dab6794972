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
    urls = re.findall(r"rediss?://\S*", COMPOSE.split("\nname:", 1)[1])  # after the comments
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
    assert "EXPOSE 8080" in (REPO / "Dockerfile").read_text("utf-8")
    prometheus = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text("utf-8")
    assert "job_name: screening-api" in prometheus and "names: [api]" in prometheus
