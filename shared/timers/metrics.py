"""Prometheus metrics of the timers (SPEC §9, issue 10)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PENDING = Gauge("ticketq_timers_pending", "Timers armed and not yet fired or cancelled (sampled)")
LATENESS = Histogram(
    "ticketq_timer_lateness_seconds",
    "How long after its due time a timer's firing committed (fired - due)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
FIRED = Counter("ticketq_timers_fired_total", "Timers fired", ["kind"])
FAILED = Counter(
    "ticketq_timer_failures_total", "Fire handler failures (the timer is tried again)", ["kind"]
)
BREACHES = Counter("ticketq_breaches_total", "Service-level breaches recorded", ["kind"])
ESCALATIONS = Counter("ticketq_escalations_total", "Escalations recorded", ["kind"])
