"""Prometheus metrics, served as text on ``GET /metrics``.

prometheus_client does the exposition format and the thread-safe counters; each hub has
its own registry so that tests and embedded daemons do not share numbers.
"""

from __future__ import annotations

from typing import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge("sandboxd_sessions", "Open WebSocket sessions.", registry=r)
        self.sandboxes = Gauge("sandboxd_sandboxes", "Sandboxes this daemon manages.", registry=r)
        self.running = Gauge("sandboxd_running_executions", "Executions running now.", registry=r)
        self.engine_up = Gauge("sandboxd_engine_available", "1 while the Docker engine answers health checks.",
                               ["engine"], registry=r)
        self.executions = Counter("sandboxd_executions", "Executions that ended, by status.", ["status"], registry=r)
        self.output_bytes = Counter("sandboxd_output_bytes", "Output bytes streamed, by stream.", ["stream"],
                                    registry=r)
        self.exec_start = Histogram(
            "sandboxd_exec_start_seconds", "From execute-command to the command's output stream being open.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.docker_errors = Counter("sandboxd_docker_api_errors",
                                     "Failed Docker Engine API calls, by engine and operation.",
                                     ["engine", "op"], registry=r)
        #: Pre-bound children for the hot path.
        self.stdout_bytes = self.output_bytes.labels("stdout")
        self.stderr_bytes = self.output_bytes.labels("stderr")

    def docker_error(self, op: str, engine: str = "local") -> None:
        """Count a failed Docker Engine API call (the engine's ``on_error``)."""
        self.docker_errors.labels(engine, op).inc()

    def observe(
        self, *, sessions: Callable[[], float], sandboxes: Callable[[], float], running: Callable[[], float],
        engine_up: Mapping[str, Callable[[], float]],
    ) -> None:
        """The gauges: each callable is read when scraped, so they are never stale."""
        self.sessions.set_function(sessions)
        self.sandboxes.set_function(sandboxes)
        self.running.set_function(running)
        for name, up in engine_up.items():
            self.engine_up.labels(name).set_function(up)

    def render(self) -> bytes:
        return generate_latest(self.registry)
