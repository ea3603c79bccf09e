"""What ``/metrics`` counts, in Prometheus's formats, through ``prometheus-client``.

Imported only by a daemon started with ``--health`` (the library's import alone is some
45 ms and a few MB). Nothing is kept that the status rows already hold: the state, ready and
restart series are read off ``Supervisor.status()`` at a scrape, so they cannot drift from
what ``corral status`` shows. Only the start latency needs a memory of its own: each
instance's entry into its start walk, noted by a driver observer (``observe``) and turned
into one histogram sample when the walk reaches running.

Kept renderings: the library writes a few microseconds per line, and a thousand services
are some 30,000 lines (150 ms of the loop's time per scrape). So the text is made in three
parts, each kept until what it shows changes: the status rows' part while ``status()``
hands back the same list (it does while the table's version stands), the histogram's
while no start has ended, and only the uptime's one line is new at every scrape. A scrape
of an unchanged corral then costs next to nothing, whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from corral.control.protocol import StatusRow
from corral.core.records import Instance
from corral.core.states import State
from corral.daemon.runtime import Runtime

#: The walk from ``starting`` to ``running``: a start's duration is measured across it.
START_WALK = frozenset({State.STARTING, State.PRE_START, State.SPAWNED, State.POST_START})
#: Seconds: from a plain process that is ready at once to a database's long recovery (the
#: default ``timeout_start`` is 90 s).
START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Every state, in the machine's order: each instance has one series per state (1 for the
#: one it is in, 0 for the rest), so a query for a state finds a 0 rather than nothing.
STATES = [state.value for state in State]
#: How an OpenMetrics text ends; said once, after the last part.
_EOF = b"# EOF\n"

Rows = Callable[[], list[StatusRow]]

# The ``_created`` series of each histogram is noise for a supervisor's scrape.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped there


class Metrics:
    """Every series of ``/metrics``: the status rows, the start latency histogram (fed by
    ``observe``) and the uptime, rendered in the format a scraper asks for."""

    def __init__(self, rows: Rows, clock: Callable[[], float], began: float) -> None:
        self._rows = rows
        self._row_series = _RowSeries()
        self._uptime = _Uptime(clock, began)
        self._histograms = CollectorRegistry()
        self._starts = prometheus_client.Histogram(
            "corral_service_start_seconds",
            "Seconds from starting to running, per start (respawns included)",
            ["service"],
            buckets=START_BUCKETS,
            registry=self._histograms,
        )
        self._ended = 0  # starts observed: the histogram's version
        #: Instances on their start walk: when they set out (the driver's clock).
        self._walking: dict[Runtime, float] = {}
        # The kept parts: the format they are in, and each with what it was made from.
        self._format = ""
        self._rows_part: tuple[list[StatusRow], bytes] | None = None
        self._starts_part: tuple[int, bytes] | None = None

    def observe(self, rt: Runtime, before: Instance) -> None:
        """A driver observer: called after each change of an instance's state."""
        inst = rt.inst
        if inst.state in START_WALK:
            if before.state not in START_WALK:
                self._walking[rt] = inst.since
        elif inst.state is State.RUNNING:
            # One step may take a walk whole (a job without a process): then it took no time.
            set_out = self._walking.pop(rt, inst.since)
            self._starts.labels(inst.job).observe(max(0.0, inst.since - set_out))
            self._ended += 1
        else:
            self._walking.pop(rt, None)  # the walk turned back: no start to count

    def render(self, accept: str) -> tuple[bytes, str]:
        """Every series in the format the scraper's ``Accept`` asks for (Prometheus text by
        default, OpenMetrics on request): the body and its content type."""
        encoder, content_type = choose_encoder(accept)
        if content_type != self._format:
            self._format, self._rows_part, self._starts_part = content_type, None, None
        rows = self._rows()
        if self._rows_part is None or self._rows_part[0] is not rows:
            self._row_series.rows = rows
            self._rows_part = (rows, _part(encoder, self._row_series))
        if self._starts_part is None or self._starts_part[0] != self._ended:
            self._starts_part = (self._ended, _part(encoder, self._histograms))
        parts = [self._rows_part[1], self._starts_part[1], _part(encoder, self._uptime)]
        if content_type.startswith("application/openmetrics-text"):
            parts.append(_EOF)
        return b"".join(parts), content_type


def _part(encoder: Callable[[Collector], bytes], collector: Collector) -> bytes:
    """Some of the families, as the encoder writes them (an OpenMetrics text's end mark is
    said once, by ``render``)."""
    return encoder(collector).removesuffix(_EOF)


class _RowSeries:
    """The series read off a list of status rows (set before each rendering)."""

    def __init__(self) -> None:
        self.rows: list[StatusRow] = []

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "corral_service_state",
            "1 for the state the instance is in, 0 for every other",
            labels=["service", "instance", "state"],
        )
        ready = GaugeMetricFamily(
            "corral_service_ready",
            "1 while the instance is running and ready",
            labels=["service", "instance"],
        )
        restarts = CounterMetricFamily(
            "corral_service_restarts",
            "Automatic respawns of the instance",
            labels=["service", "instance"],
        )
        for row in self.rows:
            labels = [row.name, row.instance]
            for name in STATES:
                state.add_metric([*labels, name], 1.0 if name == row.state else 0.0)
            ready.add_metric(labels, 1.0 if row.ready else 0.0)
            restarts.add_metric(labels, float(row.restarts))
        return iter([state, ready, restarts])


class _Uptime:
    def __init__(self, clock: Callable[[], float], began: float) -> None:
        self._clock = clock
        self._began = began

    def collect(self) -> Iterator[Metric]:
        uptime = GaugeMetricFamily("corral_uptime_seconds", "Seconds since this corral started")
        uptime.add_metric([], self._clock() - self._began)
        return iter([uptime])
