"""The daily report as one self-contained HTML file: tables and inline SVG charts, no external
assets. Each number shown carries `data-figure`: its `/`-separated path in the JSON report."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from shared.report.daily import Report

STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
td.n{text-align:right}h2{margin-top:1.5em}svg text{font-size:10px}"""

HEADLINES: tuple[tuple[str, str], ...] = (
    ("Tickets received", "figures/received/count"),
    ("Resolved (of those received)", "figures/resolved/count"),
    ("Resolution rate", "resolution_rate"),
    ("Reopened", "figures/reopened/count"),
    ("Carried over", "figures/carried_over/count"),
    ("First responses", "first_response_time/replied"),
    ("First response p50 (s)", "first_response_time/p50_seconds"),
    ("First response p90 (s)", "first_response_time/p90_seconds"),
    ("Share within 30 s", "first_response_time/share_within_30s"),
    ("Breaches", "figures/breaches/count"),
    ("Escalations", "figures/escalations/count"),
    ("Transfers", "figures/transfers/count"),
    ("Handoff round trips", "figures/transfers/sum"),
    ("Pre-sale losses", "figures/losses/count"),
    ("Unpaid reminders ended", "figures/unpaid_outcomes/count"),
    ("Chases taken over", "figures/chase_credit/count"),
    ("Delay reasons", "figures/delay_reasons/count"),
    ("Refunds", "figures/refunds/count"),
    ("Refunded amount", "figures/refunds/sum"),
    ("Compensation payouts", "figures/compensation/count"),
    ("Compensation amount", "figures/compensation/sum"),
)


def lookup(report: Report, path: str) -> Any:
    """The value at a path of the report, parts separated by `/` (queue names have dots)."""
    value: Any = report
    for part in path.split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _num(report: Report, path: str) -> str:
    value = lookup(report, path)
    shown = "-" if value is None else str(value)
    return f'<td class="n" data-figure="{escape(path)}">{escape(shown)}</td>'


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Sequence[float]]) -> str:
    """Vertical bars, one group per label, one colour per series, as inline SVG."""
    colours = ("#4878a8", "#d8694a")
    top = max([1.0, *(v for s in series for v in s)])
    slot = 28 * len(series) + 8
    w, h = 40 + slot * len(labels), 180
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">']
    parts.append(f"<title>{escape(title)}</title>")
    for i, label in enumerate(labels):
        for j, values in enumerate(series):
            bar = 130 * values[i] / top
            x = 30 + i * slot + j * 28
            parts.append(
                f'<rect x="{x}" y="{150 - bar:.1f}" width="24" height="{bar:.1f}" '
                f'fill="{colours[j % 2]}"/><text x="{x}" y="{146 - bar:.1f}">{values[i]:g}</text>'
            )
        parts.append(f'<text x="{30 + i * slot}" y="165">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _breakdowns(report: Report) -> str:
    out = []
    for name, figure in report["figures"].items():
        for group, counts in figure["by"].items():
            if not counts or group == "hour":
                continue
            rows = "".join(
                f"<tr><td>{escape(key)}</td>{_num(report, f'figures/{name}/by/{group}/{key}')}"
                + (_num(report, f"figures/{name}/sums/{group}/{key}") if "sums" in figure else "")
                + "</tr>"
                for key in sorted(counts)
            )
            out.append(f"<h3>{escape(name)} by {escape(group)}</h3><table>{rows}</table>")
    return "".join(out)


def _charts(report: Report) -> str:
    speed = report["first_response_time"]["histogram_10s"]
    buckets = [f"{10 * i}" for i in range(len(speed) - 1)] + ["120+"]
    breaches = report["figures"]["breaches"]["by"]["agent_id"]
    escalations = report["figures"]["escalations"]["by"]["agent_id"]
    agents = sorted(set(breaches) | set(escalations))
    hours = report["figures"]["received"]["by"]["hour"]
    return (
        "<h2>First response (business seconds, 10 s buckets)</h2>"
        + bar_chart("first response histogram", buckets, [speed])
        + "<h2>Breaches (blue) and escalations (red) per agent</h2>"
        + bar_chart(
            "breaches and escalations per agent",
            agents,
            [[breaches.get(a, 0) for a in agents], [escalations.get(a, 0) for a in agents]],
        )
        + "<h2>Arrivals per hour</h2>"
        + bar_chart(
            "hourly arrivals",
            [str(h) for h in range(24)],
            [[hours.get(str(h), 0) for h in range(24)]],
        )
    )


def _dlq(report: Report) -> str:
    dlq = report["dlq"]
    if "error" in dlq:
        return f'<p class="dlq-error">DLQ counts not available: {escape(dlq["error"])}</p>'
    rows = "".join(
        f"<tr><td>{escape(q)}</td>{_num(report, f'dlq/queues/{q}')}</tr>" for q in dlq["queues"]
    )
    return f"<table>{rows}</table>"


def render(report: Report) -> str:
    """The whole page."""
    role = report["role"] or "all roles"
    title = f"Daily report {report['day']} ({role})"
    heads = "".join(f"<tr><th>{escape(t)}</th>{_num(report, p)}</tr>" for t, p in HEADLINES)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Shop day in {escape(report['timezone'])}; generated {report['generated_at']}.</p>"
        f"<table>{heads}</table>{_charts(report)}<h2>Breakdowns</h2>{_breakdowns(report)}"
        f"<h2>Dead-letter queues</h2>{_dlq(report)}</body></html>"
    )
