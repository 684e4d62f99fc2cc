"""Settings for every process, from `TICKETQ_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETQ_", frozen=True)

    amqp_url: str = Field(
        "amqp://ticketq:ticketq@127.0.0.1:5672/ticketq", description="RabbitMQ connection URL"
    )
    database_url: str = Field(
        "postgresql://ticketq:ticketq@127.0.0.1:5432/ticketq",
        description="PostgreSQL connection URL (the system of record)",
    )
    prefetch: int = Field(100, ge=1, description="Unacked deliveries per consumer")
    db_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per process")
    retry_attempts: int = Field(5, ge=1, description="Tries for a transient failure")
    retry_max_wait: float = Field(2.0, gt=0, description="Longest backoff between tries, s")
    delivery_limit: int = Field(
        20, ge=2, description="Deliveries after which the broker dead-letters a message"
    )
    queue_max_length: int = Field(
        1_000_000, ge=1, description="Queue bound; needed for at-least-once dead-lettering"
    )
    relay_batch: int = Field(200, ge=1, description="Outbox rows published per relay round")
    relay_idle_poll: float = Field(0.5, gt=0, description="Relay poll interval when idle, s")
    inbox_retention_days: int = Field(14, ge=1, description="How long message ids are kept")
    log_level: str = Field("info", description="debug, info, warning or error")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz; 0 picks one"
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics port binds")
    return_window_days: int = Field(
        7, ge=0, le=365, description="No-reason return window after signing, days (SPEC §7)"
    )
    compensation_approval_threshold: Decimal = Field(
        Decimal("50"), ge=0, description="Payouts above this (CNY) need a supervisor approval"
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 7, description="How long a sign-in lasts (a shift), hours"
    )
    sign_in_failures: int = Field(
        5, ge=1, description="Failed sign-ins of one agent id allowed per window"
    )
    sign_in_window_minutes: float = Field(
        15.0, gt=0, description="The window failed sign-ins are counted in, minutes"
    )

    def for_service(self, name: str, env: Mapping[str, str] | None = None) -> Settings:
        """These settings with `name`'s own credentials: `TICKETQ_<NAME>_AMQP_URL` and
        `TICKETQ_<NAME>_DATABASE_URL` where set (`ticketq setup` creates them), else the
        shared `TICKETQ_AMQP_URL` / `TICKETQ_DATABASE_URL`. `admin` names setup's own."""
        env = os.environ if env is None else env
        prefix = f"TICKETQ_{name.upper()}_"
        urls = {
            field: env[prefix + field.upper()]
            for field in ("amqp_url", "database_url")
            if env.get(prefix + field.upper())
        }
        return self.model_copy(update=urls)


SHARED_URLS = ("TICKETQ_AMQP_URL", "TICKETQ_DATABASE_URL")


def without_own_urls(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without any service's own URLs (`servers.sh env` exports them), so processes
    started with it (tests', benches') use the shared URLs they are given, not the shared
    servers' database and vhost."""
    return {
        name: value
        for name, value in env.items()
        if name in SHARED_URLS or not name.endswith(("_AMQP_URL", "_DATABASE_URL"))
    }


@lru_cache
def get_settings() -> Settings:
    return Settings()


def operator_settings() -> Settings:
    """What operators' commands run on (`ticketq dlq`, `agent password|revoke`, `calendar load`):
    the `ops` credentials (`TICKETQ_OPS_*`, which `ticketq setup` creates) where set, else the
    shared URLs."""
    return get_settings().for_service("ops")


def report_settings() -> Settings:
    """What the daily report run by hand runs on (`ticketq report daily|list|schedule`): the
    `report` credentials (`TICKETQ_REPORT_*`) where set, else the shared URLs."""
    return get_settings().for_service("report")
