"""Training: fitting the models the engine serves (``screening train``).

:mod:`~screening.training.train` runs the procedure in order — the examples made fit
for an honest measurement (:mod:`~screening.training.data`), a linear model and
thresholds per category (:mod:`~screening.training.selection`), the model card
(:mod:`~screening.training.card`) — with the targets of
:mod:`~screening.training.options`, which every step reads.
"""
