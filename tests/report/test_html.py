"""The HTML report, rendered by headless Chromium: one file, no external assets, and every
number it shows equals the JSON report's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from shared.db import Pool
from shared.report.html import lookup
from tests.report.day import write_day
from tests.staff import Cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOWN = re.compile(r'data-figure="([^"]+)"[^>]*>([^<]*)<')


def rendered(page: Path) -> str:
    """The DOM after Chromium loaded and laid out the page (scripts, SVG and all)."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make chromium` installs it)"
)
async def test_the_html_renders_and_shows_the_json_numbers(
    db: Pool, cli: Cli, tmp_path: Path
) -> None:
    await write_day(db)
    page = tmp_path / "day.html"
    run = await cli("report", "daily", "--date", "2026-11-22", "--html", str(page), "--json")
    assert run.exit_code == 0, run
    report = json.loads(run.stdout)
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # self-contained
    dom = rendered(page)
    assert dom.count("<svg") == 3 and dom.count("<rect") > 13
    shown = {unescape(path): unescape(text) for path, text in SHOWN.findall(dom)}
    assert len(shown) > 30
    for path, text in shown.items():
        value = lookup(report, path)
        assert text == ("-" if value is None else str(value)), path
    assert shown["figures/received/count"] == "5"
    assert shown["first_response_time/p90_seconds"] == "41.0"
    assert shown["figures/breaches/by/agent_id/a1"] == "2"
