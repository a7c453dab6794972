"""The pipeline: the queue contract between chat servers and workers, and its I/O.

:mod:`~screening.pipeline.message` is the wire format (the struct, its validation, the
batch envelope), :mod:`~screening.pipeline.client` the chat-server side that batches
messages onto the broker, :mod:`~screening.pipeline.state` what all workers share in
Redis (dedupe claims, dead letters, counters), and :mod:`~screening.pipeline.callbacks`
the signed events sent to the platform. The dramatiq actors that use them live in
``workers/``.
"""
