"""Two intake replicas share one queue and still make exactly the right tickets (§4, §10).

2,000 messages: 1,600 distinct contacts and 400 duplicates of them (200 re-published with
the same message id, 200 with a new message id but the same dedup key), ordered so that
copies and contacts about the same order often land on both replicas at once. Some orders get
several contacts: the first opens the ticket, the others are follow-ups, whichever replica
handles them. Every count is exact.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from aio_pika.abc import AbstractChannel

from services.intake.client import TicketPublisher
from services.intake.contracts import SubmitTicket
from shared.config import Settings
from shared.db import Pool
from shared.messaging.topology import queue_stats
from tests.helpers import WorkerProcesses, contact, depth, handled, wait_until

LONE = 1_000  # contacts about no order: one inquiry ticket each, pre-sale
ORDERS = 200  # orders with CONTACTS_PER_ORDER contacts each: one ticket, the rest follow-ups
CONTACTS_PER_ORDER = 3
BATCH = 250


def population() -> tuple[list[SubmitTicket], dict[str, int]]:
    """The distinct contacts and what they must make; a paid order's contacts go to
    after-sales (urge shipment), an unpaid one's to pre-sale (a question before paying)."""
    contacts = [contact(f"chat-{i}", subject="这个有货吗?") for i in range(LONE)]
    for n in range(ORDERS):
        paid = n % 2 == 0
        for k in range(CONTACTS_PER_ORDER):
            contacts.append(
                contact(
                    f"order-{n}-{k}",
                    source="im-gateway" if k % 2 == 0 else "phone-system",
                    subject="还没发货吗" if paid else "能便宜点吗",
                    order_id=f"o-{n}",
                    paid=paid,
                )
            )
    follow_ups = ORDERS * (CONTACTS_PER_ORDER - 1)
    presale_orders = ORDERS // 2
    expected = {
        "contacts": len(contacts),
        "tickets": LONE + ORDERS,
        "follow_ups": follow_ups,
        "presale": LONE + presale_orders * CONTACTS_PER_ORDER,
        "aftersales": (ORDERS - presale_orders) * CONTACTS_PER_ORDER,
    }
    return contacts, expected


Message = tuple[SubmitTicket, str | None]  # a contact and the message id to send it with


def shuffled_with_duplicates(contacts: list[SubmitTicket], rng: random.Random) -> list[Message]:
    """Every contact once, plus 200 copies with the same message id (re-published) and 200
    with a new one (an upstream that mints ids per send). Half the copies follow their
    original at once, and an order's contacts come together, so that round-robin delivery
    hands them to both replicas at the same time; the other copies come anywhere, even first."""
    groups: dict[str, list[Message]] = {}
    for c in contacts:
        groups.setdefault(c.order.id if c.order else c.external_id, []).append((c, None))
    copies = rng.sample(contacts, 400)
    loose: list[list[Message]] = []
    for n, c in enumerate(copies):
        copy: Message = (c, None) if n < 200 else (c, f"resent-{n}")
        if n % 2:
            groups[c.order.id if c.order else c.external_id].append(copy)
        else:
            loose.append([copy])
    ordered = list(groups.values()) + loose
    rng.shuffle(ordered)
    return [m for group in ordered for m in group]


async def test_two_replicas_make_exact_counts_from_2000_messages_with_duplicates(
    settings: Settings, channel: AbstractChannel, db: Pool, tmp_path: Path
) -> None:
    contacts, expected = population()
    assert expected["contacts"] == 1_600
    messages = shuffled_with_duplicates(contacts, random.Random(20261123))
    assert len(messages) == 2_000

    workers = WorkerProcesses(tmp_path)
    replicas = [workers.start("intake", settings), workers.start("intake", settings)]
    try:

        async def both_consuming() -> bool:
            consumers = (await queue_stats(channel, "intake"))[1]
            return all(r.alive() for r in replicas) and consumers == len(replicas)

        await wait_until(both_consuming, what="two intake consumers")
        async with TicketPublisher(settings.amqp_url, producer="load") as pub:
            for i in range(0, len(messages), BATCH):
                batch = messages[i : i + BATCH]
                await pub.publish_many([c for c, _ in batch], message_ids=[m for _, m in batch])

        async def all_handled() -> bool:
            return all(r.alive() for r in replicas) and sum(
                r.log().count('"event": "message_handled"') for r in replicas
            ) == len(messages)

        await wait_until(all_handled, timeout=60, what="2,000 messages handled")

        async def all_relayed() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM outbox") == 0)

        await wait_until(all_relayed, what="the outboxes drained")
    finally:
        await workers.close()
    assert [r.proc.returncode for r in replicas] == [0, 0]

    counts = {
        "tickets": await db.fetchval("SELECT count(*) FROM tickets"),
        "contacts": await db.fetchval("SELECT count(*) FROM ticket_contacts"),
        "follow_ups": await db.fetchval("SELECT count(*) FROM ticket_contacts WHERE is_follow_up"),
        "presale": await depth(channel, "presale"),
        "aftersales": await depth(channel, "aftersales"),
    }
    assert counts == {k: expected[k] for k in counts}
    assert counts["presale"] + counts["aftersales"] == counts["tickets"] + counts["follow_ups"]
    # One ticket per order, holding all its contacts; one opening history entry per ticket.
    per_order = await db.fetch(
        """SELECT t.order_id, count(c.*) AS contacts
           FROM tickets t JOIN ticket_contacts c ON c.ticket_id = t.id
           WHERE t.order_id IS NOT NULL GROUP BY t.order_id"""
    )
    assert len(per_order) == ORDERS
    assert {r["contacts"] for r in per_order} == {CONTACTS_PER_ORDER}
    history = Counter(r["action"] for r in await db.fetch("SELECT action FROM ticket_history"))
    assert history == {"opened": expected["tickets"], "follow_up_attached": expected["follow_ups"]}
    assert await db.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'intake'") == 1_800
    for queue in ("intake", "intake.dlq", "presale.dlq", "aftersales.dlq"):
        assert await depth(channel, queue) == 0, queue

    # Both replicas took part; each message was handled once, by one of them.
    lines = [r.lines() for r in replicas]
    outcomes = Counter(line["outcome"] for log in lines for line in handled(log))
    assert outcomes == {
        "created": expected["tickets"],
        "follow_up": expected["follow_ups"],
        "duplicate_message": 200,
        "duplicate_contact": 200,
    }
    assert all(handled(log) for log in lines), "each replica handled some messages"
    for log in lines:
        bad = [
            line for line in log if line["level"] in ("error", "critical") or "exception" in line
        ]
        assert bad == [], bad[:3]
