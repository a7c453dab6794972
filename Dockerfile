# The worker image (also `screening serve` and `screening records migrate`): the package,
# its pinned dependencies, the shipped wordlists, banks and model (models/zh-chat-2; not the
# training seed data, not the previous model). Settings come from SCREENING_* environment
# variables (docs/pipeline.md "Settings"). Checked by hadolint and built by CI when Docker
# is there (tests/deploy/test_image.py).
#
# Base pinned by version. Its digest (the multi-platform index of
# python:3.11.10-slim-bookworm, as pinned publicly) is
#   sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16
# — confirm with `docker buildx imagetools inspect python:3.11.10-slim-bookworm` before
# pinning FROM to it (`FROM python:3.11.10-slim-bookworm@sha256:…`).
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, from the pins in pyproject.toml (runtime, postgres and rabbitmq
# extras): this layer is rebuilt when the pins change, not when the code does.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extra = p['optional-dependencies']; \
print('\n'.join(p['dependencies'] + extra['postgres'] + extra['rabbitmq']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The package itself, installed (not editable); its dependencies are already in place,
# pinned above (DL3013 asks for a version on `.`, which is this checkout).
COPY README.md ./
COPY screening ./screening
COPY workers ./workers
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-deps '.[postgres,rabbitmq]' \
    && rm -rf build screening workers ./*.egg-info

# What the engine loads, outside the package (the installed package cannot find the
# repository's directories next to itself).
COPY wordlists /app/wordlists
COPY banks /app/banks
COPY models/zh-chat-2 /app/models/zh-chat-2

# A non-root user with a fixed id, owning the records directory (the default SQLite
# store: SCREENING_DATABASE_URL points a deployment at PostgreSQL instead) and the cache of
# derived start-up files (model weights, compiled wordlist), which /app, root's, cannot hold.
RUN groupadd --system --gid 10001 screening \
    && useradd --system --uid 10001 --gid screening --home-dir /app --no-create-home screening \
    && mkdir -p /var/lib/screening \
    && chown screening:screening /var/lib/screening
ENV SCREENING_WORDLISTS=/app/wordlists \
    SCREENING_BANKS=/app/banks \
    SCREENING_MODEL=/app/models/zh-chat-2 \
    SCREENING_RECORDS_PATH=/var/lib/screening/records.sqlite3 \
    SCREENING_MODEL_CACHE=/var/lib/screening/cache \
    SCREENING_METRICS_ADDR=0.0.0.0 \
    SCREENING_METRICS_PORT=9191 \
    SCREENING_LOG_FORMAT=json
VOLUME ["/var/lib/screening"]
USER 10001:10001

# /metrics of `screening worker`; `screening serve` (the HTTP API) listens on 8080.
EXPOSE 9191 8080
# The worker is healthy while its /metrics answers (dramatiq's main process and its
# metrics fork are up); compose overrides this for `serve` (GET /readyz). A worker run
# with SCREENING_METRICS_PORT=0 has nothing to ask: give it `--no-healthcheck`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('SCREENING_METRICS_PORT', '9191'), timeout=4)"]
CMD ["screening", "worker"]
