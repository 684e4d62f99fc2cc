"""Intake's decision for a contact (SPEC §4, §5.1): a new ticket, or a follow-up to the open one.

Seed 000's 未处理完毕顾客: a customer whose problem is not finished goes back to the agent who
took it first (who tracks the result), not to whoever is free, and not to the role that
happens to hold the ticket during a handoff.
"""

from __future__ import annotations

from services.intake.decide import AttachFollowUp, OpenNewTicket, OpenTicket, route_contact
from shared.tickets.roles import Role, TicketKind
from tests.helpers import contact


def open_ticket(
    *,
    owner: Role = Role.AFTERSALES,
    owner_agent: str | None = None,
    first_handler: str | None = None,
    first_handler_role: Role | None = None,
) -> OpenTicket:
    return OpenTicket(
        id="T261123-000007",
        owner_role=owner,
        owner_agent_id=owner_agent,
        first_handler_id=first_handler,
        first_handler_role=first_handler_role,
    )


def test_a_contact_with_no_open_ticket_opens_one_for_its_kinds_role() -> None:
    assert route_contact(contact("c", subject="这个有货吗?"), None) == OpenNewTicket(
        TicketKind.INQUIRY, Role.PRESALE
    )
    broken = contact("c", subject="收到的杯子破损了", order_id="o-1", shipped=True)
    assert route_contact(broken, None) == OpenNewTicket(TicketKind.QUALITY, Role.AFTERSALES)


def test_a_follow_up_goes_to_the_first_handler_not_to_the_current_owner() -> None:
    # A pre-sale agent took it, passed it to after-sales, which handed a pick-up to the
    # warehouse: the warehouse owns it now, the pre-sale agent still tracks it (§5.4, §5.6).
    ticket = open_ticket(
        owner=Role.WAREHOUSE,
        owner_agent=None,
        first_handler="a-presale-3",
        first_handler_role=Role.PRESALE,
    )
    again = contact("phone-9", source="phone-system", subject="退货寄回了吗", order_id="o-1")
    assert route_contact(again, ticket) == AttachFollowUp(
        "T261123-000007", Role.PRESALE, "a-presale-3"
    )


def test_a_follow_up_to_a_ticket_its_first_handler_owns_goes_to_them() -> None:
    ticket = open_ticket(
        owner=Role.AFTERSALES,
        owner_agent="a7",
        first_handler="a7",
        first_handler_role=Role.AFTERSALES,
    )
    decision = route_contact(contact("c2", subject="还没发货吗", order_id="o-1"), ticket)
    assert decision == AttachFollowUp("T261123-000007", Role.AFTERSALES, "a7")


def test_a_follow_up_to_a_ticket_nobody_took_yet_waits_in_its_roles_queue() -> None:
    ticket = open_ticket(owner=Role.AFTERSALES)  # routed by intake, still queued
    decision = route_contact(contact("c2", subject="再问一下", order_id="o-1"), ticket)
    assert decision == AttachFollowUp("T261123-000007", Role.AFTERSALES, None)


def test_a_follow_up_is_not_classified_again() -> None:
    """An open after-sales ticket keeps its follow-ups, even when they read like a pre-sale
    question: the problem is the one already being handled."""
    presale_words = contact("c2", subject="这个有货吗?能便宜点吗", order_id="o-1")
    assert route_contact(presale_words, None) == OpenNewTicket(
        TicketKind.GENERAL_AFTERSALES, Role.AFTERSALES
    )
    queued_presale = open_ticket(owner=Role.PRESALE)
    complaint = contact("c3", subject="我要投诉", order_id="o-1")
    assert route_contact(complaint, queued_presale) == AttachFollowUp(
        "T261123-000007", Role.PRESALE, None
    )


def test_a_first_handler_without_a_role_falls_back_to_the_owner() -> None:
    # Half-recorded first handler (should not happen): never route to a role of None.
    ticket = open_ticket(owner=Role.AFTERSALES, owner_agent="a7", first_handler="a7")
    decision = route_contact(contact("c2", subject="在吗", order_id="o-1"), ticket)
    assert decision == AttachFollowUp("T261123-000007", Role.AFTERSALES, "a7")
