"""`ticketq web`: the workbench as its own process (uvicorn)."""

from __future__ import annotations

import os
import secrets

import structlog
import uvicorn
from starlette.applications import Starlette

from services.flows import load_all
from shared.clock import clock_from_env
from shared.config import Settings
from shared.web.app import create_app

log = structlog.get_logger(__name__)


def app_from_env(settings: Settings) -> Starlette:
    """The workbench for this process's settings; `TICKETQ_WEB_SECRET` signs the session
    cookies (unset: a random one, so sessions end when the process does), and
    `TICKETQ_WEB_HTTPS_ONLY=1` marks them Secure."""
    secret = os.environ.get("TICKETQ_WEB_SECRET")
    if not secret:
        log.warning("web_secret_random", hint="set TICKETQ_WEB_SECRET to keep sessions")
        secret = secrets.token_urlsafe(32)
    return create_app(
        settings,
        clock=clock_from_env(),
        flows=load_all(),
        secret=secret,
        https_only=os.environ.get("TICKETQ_WEB_HTTPS_ONLY", "") in ("1", "true", "yes"),
    )


def serve(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(
        app_from_env(settings),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
