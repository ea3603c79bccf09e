"""The reliability suite at small sizes (its full sizes: ``python -m reliability``, see
reliability/README.md), and the regression tests of what it found."""

from tests.system.conftest import corral  # noqa: F401  # the real-daemon fixture, shared
