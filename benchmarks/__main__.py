"""``python -m benchmarks``: every benchmark, results in ``benchmarks/results/<machine>.{json,md}``."""

import sys

from benchmarks.run_all import main

sys.exit(main())
