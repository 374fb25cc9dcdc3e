"""Prometheus `/metrics` for a running session, through ``prometheus-client``.

The same snapshots the dashboard and `bench` read (``session.snapshot()``) become metric
families on every scrape; nothing is counted twice and nothing is kept here but the last
frozen snapshot. Names and units follow Prometheus's conventions (base units: seconds,
joules, watts; counters end in ``_total``), so the figures are the results JSON's in
other units: ``latency_ms / 1000``, ``mj_per_inference / 1000``, ``mean_power_w``.

Metrics (labels ``backend``, ``model``, ``device``; ``rail`` for per-rail figures):

- ``anetui_info`` — anetui, Python and runtime versions, OS, machine, CPU, host name.
- ``anetui_inferences_total`` — timed inferences (the JSON's ``count``).
- ``anetui_inference_latency_seconds`` — a summary: p50/p90/p99/p99.9 over the whole run
  (``quantile`` label), ``_count`` (= the inference count) and ``_sum``.
- ``anetui_energy_per_inference_joules`` and ``anetui_active_energy_per_inference_joules``
  — gross and idle-subtracted, over the source's total rails.
- ``anetui_rail_energy_joules_total`` — energy per rail in the backend's attributed
  windows; ``anetui_rail_power_watts`` — mean power per rail over those windows.
- ``anetui_energy_coverage_ratio`` — share of the backend's run time covered by them.
- ``anetui_power_source_state`` (1 for the current state), ``anetui_source_power_watts``
  (per rail, the source's latest window), ``anetui_idle_power_watts`` (the baseline),
  ``anetui_thermal_pressure`` (1 for the latest level the OS reported).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.samples import Sample

from anetui import __version__
from anetui.core.results import Snapshot
from anetui.core.stats import REPORTED_QUANTILES
from anetui.errors import AnetuiError, one_line
from anetui.power.base import PowerSample, SourceState
from anetui.report import generation
from anetui.report.text import inputs_text

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from anetui.core.session import Session

BACKEND_LABELS = ("backend", "model", "device")
#: The addresses that keep the exporter on this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class View:
    """What one scrape reads: a snapshot and the power source's latest window."""

    snapshot: Snapshot | None
    latest: PowerSample | None = None


def session_view(session: Session | None) -> View:
    """A fresh snapshot of ``session`` (None before it exists) and its latest window."""
    if session is None:
        return View(None)
    return View(session.snapshot(), latest_sample(session))


def latest_sample(session: Session | None) -> PowerSample | None:
    """The power source's most recent window, or None."""
    if session is None or session.monitor is None:
        return None
    samples = session.monitor.samples()
    return samples[-1] if samples else None


def metric_families(view: View, host: str | None = None) -> Iterator[Metric]:
    """The metric families for one view (pure: tests render them without a server)."""
    yield _info(view.snapshot, host or socket.gethostname())
    snapshot = view.snapshot
    if snapshot is None:
        return
    inferences = CounterMetricFamily(
        "anetui_inferences", "Timed inferences completed (one batch each).", labels=BACKEND_LABELS
    )
    latency = _LatencySummary(
        "anetui_inference_latency",
        "Latency of one inference over the whole run, device synchronisation included.",
        labels=BACKEND_LABELS,
        unit="seconds",
    )
    gross = GaugeMetricFamily(
        "anetui_energy_per_inference",
        "Energy per inference over the power source's total rails (gross).",
        labels=BACKEND_LABELS,
        unit="joules",
    )
    active = GaugeMetricFamily(
        "anetui_active_energy_per_inference",
        "Energy per inference minus the idle baseline over the same time.",
        labels=BACKEND_LABELS,
        unit="joules",
    )
    coverage = GaugeMetricFamily(
        "anetui_energy_coverage",
        "Share of the backend's run time covered by windows attributed to it.",
        labels=BACKEND_LABELS,
        unit="ratio",
    )
    rail_labels = (*BACKEND_LABELS, "rail")
    rail_energy = CounterMetricFamily(
        "anetui_rail_energy",
        "Energy per rail in the windows attributed to the backend.",
        labels=rail_labels,
        unit="joules",
    )
    rail_power = GaugeMetricFamily(
        "anetui_rail_power",
        "Mean power per rail over the windows attributed to the backend.",
        labels=rail_labels,
        unit="watts",
    )
    for result in snapshot.backends:
        labels = (result.id, snapshot.model, result.device)
        summary = result.summary
        if summary is None:
            continue
        inferences.add_metric(labels, summary.count)
        latency.add_quantiles(
            labels,
            {q: summary.quantiles_ns[name] / 1e9 for name, q in REPORTED_QUANTILES},
            count=summary.count,
            total=summary.mean_ns * summary.count / 1e9,
        )
        energy = result.energy
        if energy is None:
            continue
        gross.add_metric(labels, energy.total_mj_per_inference / 1e3)
        if energy.total_active_mj_per_inference is not None:
            active.add_metric(labels, energy.total_active_mj_per_inference / 1e3)
        coverage.add_metric(labels, energy.coverage)
        for rail in energy.rails:
            mj = energy.mj_per_inference[rail] * energy.inferences
            rail_energy.add_metric((*labels, rail), mj / 1e3)
            rail_power.add_metric((*labels, rail), energy.mean_power_w[rail])
    yield from (inferences, latency, gross, active, coverage, rail_energy, rail_power)
    yield from generation.prometheus_families(
        snapshot,
        lambda b: (b.id, snapshot.model, b.device),
        BACKEND_LABELS,
        _LatencySummary,
    )
    yield from _power(snapshot, view.latest)


def _info(snapshot: Snapshot | None, host: str) -> InfoMetricFamily:
    info = InfoMetricFamily("anetui", "anetui, Python and runtime versions, and the machine.")
    env = snapshot.environment if snapshot is not None else {}
    labels = {"anetui": __version__, "host": host}
    for key in ("python", "torch", "onnxruntime", "coremltools", "os", "machine", "cpu"):
        value = env.get(key)
        if value is not None:
            labels[key] = str(value)
    if snapshot is not None:  # what was measured: the model and its named inputs
        labels["model"] = snapshot.model
        labels["inputs"] = inputs_text(snapshot)
    info.add_metric([], labels)
    return info


def _power(snapshot: Snapshot, latest: PowerSample | None) -> Iterator[Metric]:
    power = snapshot.power
    source = str(power.get("source", "none"))
    state = GaugeMetricFamily(
        "anetui_power_source_state",
        "1 for the power source's current state, 0 for the others.",
        labels=("source", "state"),
    )
    current = str(power.get("state", "unavailable"))
    names = [str(s) for s in SourceState]
    for name in names if current in names else [*names, current]:
        state.add_metric((source, name), 1.0 if name == current else 0.0)
    yield state
    idle = GaugeMetricFamily(
        "anetui_idle_power",
        "Idle baseline per rail: mean power while nothing ran.",
        labels=("source", "rail"),
        unit="watts",
    )
    idle_w = power.get("idle_w")
    if isinstance(idle_w, dict):
        for rail, watts in idle_w.items():
            idle.add_metric((source, str(rail)), float(watts))
    yield idle
    now = GaugeMetricFamily(
        "anetui_source_power",
        "Power per rail over the power source's latest window.",
        labels=("source", "rail"),
        unit="watts",
    )
    thermal = GaugeMetricFamily(
        "anetui_thermal_pressure",
        "1 for the thermal pressure level the OS reported in the latest window.",
        labels=("source", "level"),
    )
    if latest is not None:
        for rail, watts in latest.rails_w.items():
            now.add_metric((source, rail), watts)
        if latest.thermal_pressure:
            thermal.add_metric((source, latest.thermal_pressure), 1.0)
    yield from (now, thermal)


class _LatencySummary(SummaryMetricFamily):
    """A summary with quantile samples, which ``SummaryMetricFamily.add_metric`` (count
    and sum only) does not write; the exposition format has them (``quantile`` label)."""

    def add_quantiles(
        self, labels: tuple[str, ...], quantiles: dict[float, float], count: int, total: float
    ) -> None:
        base = dict(zip(self._labelnames, labels, strict=True))
        for q, seconds in quantiles.items():
            self.samples.append(Sample(self.name, {**base, "quantile": f"{q:g}"}, seconds))
        self.add_metric(labels, count, total)


class _Collector:
    """A custom collector: each scrape renders the exporter's current view."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        view = self._exporter.view()
        self._exporter.scraping.view = view  # which view this request thread served
        yield from metric_families(view)


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per scrape, none of them holding the process open."""

    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


class _AfterSending:
    """A WSGI response body whose ``close()`` — called by the server once the response
    has been written — reports the view it carried."""

    def __init__(self, body: Iterable[bytes], sent: Callable[[], None]) -> None:
        self._body = body
        self._sent = sent

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        self._sent()


class MetricsExporter:
    """Serves `/metrics` on ``host:port`` (port 0: a free one) from a thread.

    ``follow(getter)`` reads a live session on each scrape; ``freeze(snapshot)`` serves
    that snapshot from then on (the figures written to the results files), so a last
    scrape after the run reads exactly the JSON's values. ``stop()`` is idempotent.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._session: Callable[[], Session | None] = lambda: None
        self._frozen: View | None = None
        self._scraped_frozen = threading.Event()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        #: Per request thread: the view the collector served.
        self.scraping = threading.local()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def start(self) -> None:
        """Bind and serve from a daemon thread (prometheus-client's WSGI app, served the
        way its ``start_http_server`` does, plus a hook once a response is sent)."""
        app = make_wsgi_app(self.registry)

        def served(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            self.scraping.view = None
            body: Iterable[bytes] = app(environ, start_response)
            view = self.scraping.view
            return _AfterSending(body, lambda: self.note_sent(view))

        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = make_server(
                self.host, self.port, served, server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise AnetuiError(f"cannot serve metrics on {self.address}: {one_line(exc)}") from None
        self._server, self.port = server, server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, name="anetui-metrics", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def follow(self, session: Callable[[], Session | None]) -> None:
        """Read ``session()`` (None while there is none yet) on each scrape."""
        with self._lock:
            self._session = session

    def freeze(self, snapshot: Snapshot, session: Session | None = None) -> None:
        """Serve ``snapshot`` (and ``session``'s latest power window) from now on."""
        with self._lock:
            self._frozen = View(snapshot, latest_sample(session))
            self._scraped_frozen.clear()

    def view(self) -> View:
        with self._lock:
            frozen, session = self._frozen, self._session
        if frozen is not None:
            return frozen
        try:
            return session_view(session())
        except Exception:  # a scrape must not break the run: serve what is always there
            return View(None)

    def note_sent(self, view: View | None) -> None:
        """A response built from ``view`` has been written: the final figures have
        reached a scraper if that view was the frozen one."""
        with self._lock:
            if view is not None and view is self._frozen:
                self._scraped_frozen.set()

    def wait_for_final_scrape(self, timeout_s: float) -> bool:
        """Block until a scrape of the frozen snapshot has been sent, or ``timeout_s``."""
        return self._scraped_frozen.wait(timeout_s)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)
