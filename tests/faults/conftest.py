"""The fault-injection suite's rig (tests/faults/harness.py) for every test here."""

from tests.faults.harness import rig

__all__ = ["rig"]
