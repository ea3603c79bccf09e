"""``python -m corral``: the same entry point as the ``corral`` command."""

from corral.cli.quick import main

main()
