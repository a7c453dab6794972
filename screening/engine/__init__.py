"""The engine: text in, verdict out. Pure computation — no Redis, dramatiq, HTTP or
database client, and nothing from the other wings (a test holds it to that), so the
worker, the CLI, training and evaluation all drive the same code.

One stage per module, in the order a message meets them:

- :mod:`~screening.engine.characters` and :mod:`~screening.engine.normalize`: fold width,
  case, 繁→简, homoglyphs and noise, keeping a map back to the original text;
- :mod:`~screening.engine.tokenize`: jieba segmentation;
- :mod:`~screening.engine.wordlist`, :mod:`~screening.engine.phonetic`,
  :mod:`~screening.engine.match`, :mod:`~screening.engine.patterns`: wordlist terms (and
  their pinyin and homophone spellings) in one Aho-Corasick pass, contact patterns;
- :mod:`~screening.engine.features`, :mod:`~screening.engine.feature_index`,
  :mod:`~screening.engine.classify`: the trained per-category model;
- :mod:`~screening.engine.verdict` with :mod:`~screening.engine.config`: evidence →
  pass / review / block;
- :mod:`~screening.engine.core`: the :class:`~screening.engine.core.Engine` that wires
  them, built once per process; :mod:`~screening.engine.parts` and
  :mod:`~screening.engine.builder` rebuild it cheaply for hot reload, and
  :mod:`~screening.engine.heap` keeps it out of the garbage collector's way;
- :mod:`~screening.engine.explain` and :mod:`~screening.engine.lint`: what analysts read.
"""
