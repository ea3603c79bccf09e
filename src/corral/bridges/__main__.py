"""``python -m corral.bridges NAME``: run one of corral's bridges (corral does, for itself)."""

import sys

from corral.bridges.runner import main

sys.exit(main(sys.argv[1:]))
