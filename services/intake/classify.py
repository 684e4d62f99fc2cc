"""Which kind of ticket a new contact is (SPEC §6, §7): pure, from the contact alone."""

from __future__ import annotations

from services.intake.contracts import SubmitTicket
from shared.tickets.contracts import Channel
from shared.tickets.roles import TicketKind

# First match wins, so the more specific problems come before the general ones.
KEYWORDS: tuple[tuple[TicketKind, tuple[str, ...]], ...] = (
    # The platform's own complaint channel; a customer who says 投诉 about a late parcel in
    # chat is a logistics case (seed 000), so the bare word is not enough.
    (
        TicketKind.PLATFORM_COMPLAINT,
        ("后台投诉", "小二", "介入", "platform complaint", "intervention"),
    ),
    (TicketKind.INVOICE, ("发票", "开票", "invoice")),
    (TicketKind.WRONG_ITEM, ("发错", "错发", "漏发", "少发", "wrong item", "missing item")),
    (TicketKind.QUALITY, ("质量", "坏了", "破损", "损坏", "瑕疵", "defect", "broken", "damaged")),
    (TicketKind.EXCHANGE, ("换货", "换一个", "exchange")),
    (TicketKind.RETURN, ("退货", "退款", "return", "refund")),
    (
        TicketKind.ORDER_CHANGE,
        (
            "改地址",
            "修改地址",
            "改订单",
            "修改订单",
            "change address",
            "change order",
            "change my order",
        ),
    ),
    (TicketKind.COMPENSATION, ("补偿", "赔偿", "compensation")),
    (TicketKind.OUT_OF_STOCK, ("缺货", "out of stock")),
    (
        TicketKind.URGE_SHIPMENT,
        (
            "催发货",
            "还没发货",
            "没发货",
            "什么时候发货",
            "not shipped",
            "when will you ship",
            "hurry",
        ),
    ),
    (
        TicketKind.LOGISTICS,
        (
            "物流",
            "快递",
            "没收到",
            "送货上楼",
            "查件",
            "delivery",
            "tracking",
            "not delivered",
            "parcel",
            "courier",
        ),
    ),
)


def classify(contact: SubmitTicket) -> TicketKind:
    if contact.kind is not None:
        return contact.kind  # the upstream system knows (order centre, complaint feed)
    order = contact.order
    if order is not None and order.paid_at is None and contact.channel is Channel.SYSTEM:
        return TicketKind.UNPAID_REMINDER  # 催付: the order centre reports an unpaid order
    if contact.channel is Channel.PLATFORM:
        return TicketKind.PLATFORM_COMPLAINT  # what the platform's complaint feed sends
    text = f"{contact.subject}\n{contact.text}".lower()
    for kind, words in KEYWORDS:
        if any(word in text for word in words):
            return _refine(kind, contact)
    if order is not None and order.paid_at is not None:
        return TicketKind.GENERAL_AFTERSALES
    return TicketKind.INQUIRY


def _refine(kind: TicketKind, contact: SubmitTicket) -> TicketKind:
    """The order's state overrides a keyword that cannot apply to it."""
    order = contact.order
    if kind in (TicketKind.URGE_SHIPMENT, TicketKind.LOGISTICS) and (
        order is None or order.paid_at is None
    ):
        return TicketKind.INQUIRY  # delivery time and carrier before buying: a pre-sale question
    if kind is TicketKind.URGE_SHIPMENT and order is not None and order.shipped_at is not None:
        return TicketKind.LOGISTICS  # already shipped: it is a question of where it is
    if (
        kind is TicketKind.LOGISTICS
        and order is not None
        and order.paid_at is not None
        and order.shipped_at is None
    ):
        return TicketKind.URGE_SHIPMENT  # paid and not shipped: nothing to track yet
    return kind
