"""Enforcement: what a violation leads to for a group and a user (警示整改 … 黑名单).

- the policy analysts edit: :mod:`~screening.enforcement.policy` reads and validates
  ``policy.toml`` into :mod:`~screening.enforcement.policy_model`;
- :mod:`~screening.enforcement.measures`: which measures fire, given a violation and
  the counters (pure);
- the counters and active measures every worker shares:
  :mod:`~screening.enforcement.state` (the interface), with
  :mod:`~screening.enforcement.state_redis` (Lua in :mod:`~screening.enforcement.state_scripts`),
  :mod:`~screening.enforcement.state_memory` and the shared
  :mod:`~screening.enforcement.state_codec`;
- :mod:`~screening.enforcement.enforcer`: verdict → counters → measures → records and
  callback events, a batch at a time in few round trips (:mod:`~screening.enforcement.waves`),
  its inputs and outputs as plain values in :mod:`~screening.enforcement.events`;
- :mod:`~screening.enforcement.reports`: user reports (投诉举报), screened ahead of traffic.
"""
