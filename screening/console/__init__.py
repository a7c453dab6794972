"""The analyst console (`screening serve --console`, docs/console.md): server-rendered
pages over the engine, the audit store and the enforcer, for the people who review
verdicts, tune lists and lift measures.

Accounts and roles are :mod:`~screening.console.accounts`, signed session cookies and
CSRF tokens :mod:`~screening.console.sessions`, the console's own audit records (every
action, with the account that took it, and review outcomes) :mod:`~screening.console.audit`,
reads over the records :mod:`~screening.console.queries`. Pages: explain
(:mod:`~screening.console.explain`), the review queue (:mod:`~screening.console.review`),
groups and users (:mod:`~screening.console.subjects`). :mod:`~screening.console.app` puts
them together; the CLI mounts it beside the HTTP API and injects what needs the broker
(sending callback events, lifting a measure), so the console imports no worker code.
"""

from screening.console.accounts import ROLES, Account, AccountStore
from screening.console.app import Console, create_console

__all__ = ["ROLES", "Account", "AccountStore", "Console", "create_console"]
