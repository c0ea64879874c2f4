"""``python -m rkhsreg.cli``: the ``rkhsreg`` console script (also under ``torchrun -m rkhsreg.cli``)."""

import sys

from rkhsreg.cli import main

sys.exit(main())
