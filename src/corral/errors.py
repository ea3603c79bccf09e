"""The one exception family of corral, and the exit codes of the contract.

CorralError                 exit_code 1 unless a subclass says otherwise
├── ConfigError             a configuration could not be loaded (carries every problem)
├── UsageError              exit 2: the command line or a request is malformed
├── NoSuchService           exit 3: a name that no service or alias answers to
├── OperationFailed         exit 1: a start, stop or action did not succeed
└── DaemonUnreachable       exit 4: no daemon answers on the socket
"""

TYPE_CHECKING = False  # no typing at run time: every CLI call imports this module
if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_SUCH_SERVICE = 3
EXIT_UNREACHABLE = 4


class CorralError(Exception):
    """Base of every error corral raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_FAILED


class ConfigProblem:
    """One thing wrong in a configuration, located as precisely as the source allows.

    A plain class, not a dataclass: this module is imported by every CLI call, and
    ``dataclasses`` costs milliseconds to import.
    """

    __slots__ = ("file", "key", "line", "message", "service")

    def __init__(
        self,
        file: str,
        message: str,
        service: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.message = message
        self.service = service
        self.key = key
        self.line = line

    def __repr__(self) -> str:
        return f"ConfigProblem({str(self)!r})"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = ""
        if self.service is not None:
            what = f"service.{self.service}"
            if self.key is not None:
                what += f".{self.key}"
            what += ": "
        return f"{where}: {what}{self.message}"


class ConfigError(CorralError):
    """A configuration failed to load; ``problems`` lists every error found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(CorralError):
    exit_code = EXIT_USAGE


class NoSuchService(CorralError):
    exit_code = EXIT_NO_SUCH_SERVICE


class OperationFailed(CorralError):
    exit_code = EXIT_FAILED


class DaemonUnreachable(CorralError):
    exit_code = EXIT_UNREACHABLE


def reported(command: "Callable[[], int]") -> int:
    """Run a CLI command; its exit code, or, for an error corral raised on purpose, the
    error's own after saying it on stderr (130 for ^C, 0 for a reader that went away)."""
    import sys

    try:
        return int(command())
    except CorralError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
