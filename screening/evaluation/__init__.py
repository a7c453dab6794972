"""Evaluation: how well an engine does on labelled data, in analysts' terms.

:mod:`~screening.evaluation.evaluate` scores the verdict, the wordlists alone and the
model alone (``screening eval``), :mod:`~screening.evaluation.report` lays the figures
out for a terminal, and :mod:`~screening.evaluation.compare` measures two engines side by
side (``screening eval --compare``).
"""
