# The worker image: the same package `make run` installs, with the shipped wordlists, banks
# and model. Settings come from SCREENING_* environment variables (see docs/pipeline.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY screening ./screening
COPY workers ./workers
COPY wordlists ./wordlists
COPY banks ./banks
COPY models ./models
RUN pip install --no-cache-dir -e '.[postgres]' \
    && python -c "import jieba; jieba.initialize()"
RUN useradd --system --home /app screening
USER screening
# `screening serve` (the HTTP API) listens here; the compose file runs it as `api`.
EXPOSE 8080
CMD ["screening", "worker"]
