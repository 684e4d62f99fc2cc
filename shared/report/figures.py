"""Each figure of the daily report as one per-ticket query; its headline aggregates those rows.

Every query takes $1 the day's start, $2 its end (the shop calendar's midnight to midnight) and
$3 a role or NULL. A ticket belongs to a role by its desk: its first handler's role, else the
role that owns it. Because a headline is `count(*)`/`sum(value)` over exactly the rows its CSV
holds, the CSV adds up to it by construction (tests/report check it all the same).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE = "($3::text IS NULL OR coalesce(t.first_handler_role, t.owner_role) = $3)"


def within(column: str) -> str:
    """`column` falls in the day."""
    return f"{column} >= $1::timestamptz AND {column} < $2::timestamptz"


DAY = within("h.at")
# A step into an end state, or the resolve command: the ticket is resolved then.
RESOLVES = "(h.action = 'resolved' OR (h.action = 'stepped' AND h.detail ? 'resolution'))"


@dataclass(frozen=True)
class Figure:
    """A figure: its rows (one per ticket event), the columns it is broken down by, and the
    numeric column summed (besides the row count), if any."""

    name: str
    definition: str
    rows: str
    groups: tuple[str, ...] = ()
    value: str | None = None


FIGURES: tuple[Figure, ...] = (
    Figure(
        "received",
        "Tickets opened (opened_at) during the shop day, by kind, channel, source and hour "
        "(hours since the day's midnight).",
        f"""SELECT t.id AS ticket_id, t.kind, t.channel, t.source,
                   floor(extract(epoch FROM t.opened_at - $1::timestamptz) / 3600)::int AS hour
              FROM tickets t WHERE {within("t.opened_at")} AND {ROLE}""",
        ("kind", "channel", "source", "hour"),
    ),
    Figure(
        "first_response",
        "Tickets whose first reply came during the day (first_responses.replied_at); value: "
        "business seconds from assignment to that reply; within_30s 1 when at most 30 s.",
        f"""SELECT f.ticket_id, f.agent_id, f.business_seconds AS seconds,
                   (f.business_seconds <= 30)::int AS within_30s
              FROM first_responses f JOIN tickets t ON t.id = f.ticket_id
             WHERE {within("f.replied_at")} AND {ROLE}""",
        ("agent_id",),
        "within_30s",
    ),
    Figure(
        "resolved",
        "Tickets opened during the day and resolved (the resolve command or a flow's end "
        "state) before the day ended; resolution rate = resolved / received.",
        f"""SELECT t.id AS ticket_id, t.kind FROM tickets t
             WHERE {within("t.opened_at")} AND {ROLE}
               AND EXISTS (SELECT 1 FROM ticket_history h
                            WHERE h.ticket_id = t.id AND h.at < $2::timestamptz AND {RESOLVES})""",
        ("kind",),
    ),
    Figure(
        "reopened",
        "Follow-ups during the day that reopened a resolved ticket (follow_up_attached with "
        "detail.reopened).",
        f"""SELECT h.ticket_id, h.at FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action = 'follow_up_attached'
               AND (h.detail->>'reopened')::boolean AND {ROLE}""",
    ),
    Figure(
        "carried_over",
        "Tickets opened before the day's end and still open at it: no resolve or close "
        "before the end, or reopened after the last one; from_before: opened before the day.",
        f"""SELECT t.id AS ticket_id, t.kind, (t.opened_at < $1::timestamptz) AS from_before
              FROM tickets t
              LEFT JOIN LATERAL (
                   SELECT h.action FROM ticket_history h
                    WHERE h.ticket_id = t.id AND h.at < $2::timestamptz
                      AND ({RESOLVES} OR h.action = 'closed'
                           OR (h.action = 'follow_up_attached'
                               AND (h.detail->>'reopened')::boolean))
                    ORDER BY h.at DESC, h.id DESC LIMIT 1) last ON true
             WHERE t.opened_at < $2::timestamptz AND {ROLE}
               AND coalesce(last.action, 'follow_up_attached') = 'follow_up_attached'""",
        ("kind", "from_before"),
    ),
    Figure(
        "breaches",
        "Breach rows the timers wrote during the day, per agent held to the deadline.",
        f"""SELECT b.ticket_id, coalesce(b.agent_id, '-') AS agent_id, b.kind
              FROM breaches b LEFT JOIN tickets t ON t.id = b.ticket_id
             WHERE {within("b.at")} AND {ROLE}""",
        ("agent_id", "kind"),
    ),
    Figure(
        "escalations",
        "Escalation rows the timers wrote during the day, per agent escalated to.",
        f"""SELECT e.ticket_id, coalesce(e.to_agent_id, '-') AS agent_id, e.kind
              FROM escalations e LEFT JOIN tickets t ON t.id = e.ticket_id
             WHERE {within("e.at")} AND {ROLE}""",
        ("agent_id", "kind"),
    ),
    Figure(
        "transfers",
        "Handoffs opened during the day (handed_off, or a flow step that hands off), per "
        "role pair (the ticket's desk -> the task's role); value round_trip 1 when the "
        "task's result was recorded before the day ended.",
        f"""SELECT h.ticket_id, h.detail->>'handoff_id' AS handoff_id,
                   coalesce(t.first_handler_role, t.owner_role) || '->' || (h.detail->>'role')
                       AS pair,
                   EXISTS (SELECT 1 FROM ticket_history r
                            WHERE r.ticket_id = h.ticket_id AND r.action = 'result_recorded'
                              AND r.at < $2::timestamptz
                              AND r.detail->>'handoff_id' = h.detail->>'handoff_id')::int
                       AS round_trip
              FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action IN ('handed_off', 'stepped')
               AND h.detail ? 'handoff_id' AND {ROLE}""",
        ("pair",),
        "round_trip",
    ),
    Figure(
        "losses",
        "Flows that ended during the day with a loss reason (a step into a loss end state), "
        "per flow kind and reason.",
        f"""SELECT h.ticket_id, split_part(h.detail->>'flow', ' ', 1) AS flow, h.reason
              FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action = 'stepped' AND h.detail ? 'resolution'
               AND h.reason IS NOT NULL AND {ROLE}""",
        ("flow", "reason"),
    ),
    Figure(
        "unpaid_outcomes",
        "Unpaid-reminder flows that ended during the day, per end state.",
        f"""SELECT h.ticket_id, h.detail->>'entered' AS outcome
              FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action = 'stepped' AND h.detail ? 'resolution'
               AND h.detail->>'flow' LIKE 'unpaid\\_reminder %' AND {ROLE}""",
        ("outcome",),
    ),
    Figure(
        "chase_credit",
        "Chases (追单) taken over during the day, per agent who took it over (credited).",
        f"""SELECT h.ticket_id, h.actor_id AS agent_id
              FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action = 'chase_taken_over' AND {ROLE}""",
        ("agent_id",),
    ),
    Figure(
        "delay_reasons",
        "Warehouse urge-shipment results recorded during the day, per delay reason.",
        f"""SELECT h.ticket_id, h.detail->'data'->>'delay_reason' AS delay_reason
              FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
             WHERE {DAY} AND h.action = 'result_recorded'
               AND h.detail->'data' ? 'delay_reason' AND {ROLE}""",
        ("delay_reason",),
    ),
    Figure(
        "refunds",
        "Refunds paid during the day (the refunds ledger): count and amount.",
        f"""SELECT r.ticket_id, r.refund_id, r.amount FROM refunds r JOIN tickets t
                ON t.id = r.ticket_id WHERE {within("r.at")} AND {ROLE}""",
        (),
        "amount",
    ),
    Figure(
        "compensation",
        "Compensation paid during the day (the payouts ledger): count and amount.",
        f"""SELECT p.ticket_id, p.payout_id, p.amount FROM payouts p JOIN tickets t
                ON t.id = p.ticket_id WHERE {within("p.at")} AND {ROLE}""",
        (),
        "amount",
    ),
)

BY_NAME = {f.name: f for f in FIGURES}

# First-response time on the business clock: percentiles, and a histogram in 10 s buckets
# (bucket 12: 120 s and more).
FR_ROWS = BY_NAME["first_response"].rows
FIRST_RESPONSE = f"""
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90
  FROM ({FR_ROWS}) r"""
HISTOGRAM = f"""
SELECT b.bucket, count(r.ticket_id) AS n
  FROM generate_series(0, 12) b (bucket)
  LEFT JOIN ({FR_ROWS}) r ON least(floor(r.seconds / 10), 12) = b.bucket
 GROUP BY b.bucket ORDER BY b.bucket"""
