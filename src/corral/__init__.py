"""corral: a service manager with Upstart's job model and a loop that never blocks.

Layout: ``core`` is pure (no I/O, no clock), ``daemon`` is the asyncio shell that applies
the core's decisions, ``control`` is the socket protocol, ``cli`` the command line.
Importing this package imports nothing else, so the CLI stays fast.
"""

__version__ = "0.1.0"
