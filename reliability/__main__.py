"""The whole suite, one part after another, each printing its figures and verdicts.

    python -m reliability                  every part at full size (README.md has the sizes)
    python -m reliability --small          every part at the small sizes CI runs
    python -m reliability chaos flood      only the parts named

Exits 0 when every part passed. ``--out FILE`` also writes the reports there.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reliability import chaos, config_fuzz, log_flood, protocol_fuzz, security
from reliability.harness import Report


def _parts(small: bool) -> dict[str, Callable[[], Report]]:
    """Each part's run at the sizes asked for."""
    return {
        "chaos": lambda: chaos.run(chaos.SMALL if small else chaos.FULL),
        "protocol": lambda: protocol_fuzz.run(protocol_fuzz.SMALL if small else protocol_fuzz.FULL),
        "config": lambda: config_fuzz.run(config_fuzz.SMALL if small else config_fuzz.FULL),
        "flood": lambda: log_flood.run(log_flood.SMALL if small else log_flood.FULL),
        "security": lambda: security.run(security.SMALL if small else security.FULL),
    }


def machine() -> str:
    """What the figures were measured on."""
    load = os.getloadavg()[0]
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Linux {platform.release()}, load {load:.2f} at start"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help="chaos protocol config flood "
                        "security (default: all)")  # fmt: skip
    parser.add_argument("--small", action="store_true", help="the small sizes CI runs")
    parser.add_argument("--out", type=Path, help="also write the reports to this file")
    args = parser.parse_args(argv)
    parts = _parts(args.small)
    unknown = set(args.parts) - set(parts)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}; known: {', '.join(parts)}")
    texts = [machine()]
    print(texts[0], flush=True)
    failed = []
    for name in args.parts or list(parts):
        began = time.monotonic()
        report = parts[name]()
        report.figure("part took", f"{time.monotonic() - began:.0f} s")
        report.print()
        texts.append(report.text())
        if not report.ok:
            failed.append(name)
    summary = f"== {'FAILED: ' + ', '.join(failed) if failed else 'all parts passed'}"
    print(summary)
    if args.out is not None:
        args.out.write_text("\n\n".join([*texts, summary]) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
