"""``python -m screening.cli``: the same command as the ``screening`` console script (the
worker supervisor and tests start child processes this way, with the running Python)."""

import sys

from screening.cli.main import main

sys.exit(main())
