"""The ``screening`` command line (:mod:`~screening.cli.main`, also ``python -m
screening.cli``). Command groups register from their own modules —
:mod:`~screening.cli.operations`, :mod:`~screening.cli.enforcement`,
:mod:`~screening.cli.records`, and ``workers/commands.py`` for the pipeline — and import
what they run lazily, so ``screening scan`` stays quick. Nothing outside this wing
imports it.
"""
