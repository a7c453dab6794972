"""Operations: running the engine in production and changing it safely.

- metrics: :mod:`~screening.operations.metrics` (definitions and recording), with
  bounded label values (:mod:`~screening.operations.metric_labels`) and updates gathered
  between flushes (:mod:`~screening.operations.metrics_buffer`);
- versions: :mod:`~screening.operations.versions` stores published wordlists and models
  (Redis; :mod:`~screening.operations.versions_memory` in one process),
  :mod:`~screening.operations.publish` validates and publishes them, and
  :mod:`~screening.operations.reload` swaps them into a running worker;
- shadow testing and backtests: :mod:`~screening.operations.shadow` records what a
  candidate would change on live traffic, :mod:`~screening.operations.shadow_report`
  reads it back, and :mod:`~screening.operations.backtest` resolves versions for
  ``screening eval --compare``.
"""
