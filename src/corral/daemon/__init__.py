"""The daemon: the asyncio shell that applies the core's decisions to real processes.

asyncio imports ``ssl`` for TLS transports, which corral never opens. That import, which
maps libssl and libcrypto, was 4.4 MB of a lone daemon's PSS and 7 ms of every start. So the
daemon's asyncio is loaded as on a Python built without ssl, which asyncio supports (its TLS
code checks ``ssl is None``). Only that one import is refused; ``import ssl`` works again after.
"""

import sys

if "asyncio" not in sys.modules and "ssl" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]  # None in sys.modules: ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
