"""Which kind a new contact is (SPEC §6, §7), from sentences the manuals in seeds/ describe.

Each sentence is what a customer or the order centre says in a situation one of the seed
manuals' flows starts from (seed 000's 售前/催付/售后 flows, seed 002's complaint handling).
"""

from __future__ import annotations

from typing import Any

import pytest

from services.intake.classify import classify
from shared.tickets.contracts import Channel
from shared.tickets.roles import Role, TicketKind, role_for_kind
from tests.helpers import contact

K = TicketKind
PAID: dict[str, Any] = {"order_id": "o-1", "paid": True}
SHIPPED: dict[str, Any] = {"order_id": "o-1", "paid": True, "shipped": True}
UNPAID: dict[str, Any] = {"order_id": "o-1", "paid": False}

# (kind, subject, text, order/channel fields)
SENTENCES: list[tuple[TicketKind, str, str, dict[str, Any]]] = [
    # §6 pre-sale: greet, understand the need, bargain / coupons, delivery time and carrier
    (K.INQUIRY, "这款有现货吗?", "能便宜点吗,有没有优惠券", {}),
    (K.INQUIRY, "Do you have this in size M?", "Any coupon for a first order?", {}),
    (K.INQUIRY, "发货时间和物流", "今天拍下用什么快递,几天能到?", {}),  # before buying
    (K.INQUIRY, "买之前问一下", "我拍下了还没付款,什么时候发货?", UNPAID),
    # 催付: the order centre reports an order placed but not paid
    (K.UNPAID_REMINDER, "订单未付款", "买家拍下未付款", {**UNPAID, "channel": Channel.SYSTEM}),
    # §7 after-sales
    (K.LOGISTICS, "物流速度慢", "物流三天没更新了,是不是超时了", SHIPPED),  # 物流查件: 物流速度慢
    (K.LOGISTICS, "快递不送货上楼", "顾客反映物流要求自取,不想下楼", SHIPPED),  # 不送货上楼
    (K.LOGISTICS, "Where is my parcel?", "The tracking has not moved for days", SHIPPED),
    (K.URGE_SHIPMENT, "催发货", "付款三天了还没发货,能快点吗", PAID),  # 催发货流程
    (K.URGE_SHIPMENT, "When will you ship?", "I paid on Monday and it is still not shipped", PAID),
    (K.ORDER_CHANGE, "修改地址", "买家要求修改地址,搬家了", PAID),  # 订单修改流程
    (K.ORDER_CHANGE, "修改订单", "买家提出修改订单需求,颜色拍错了要换成白色", PAID),
    (K.WRONG_ITEM, "发错货", "顾客反馈发错货,我要的是黑色收到的是红色", SHIPPED),  # 发错货处理流程
    (K.WRONG_ITEM, "少了东西", "漏发了一个配件,盒子里只有主机", SHIPPED),  # 发错、漏发
    (K.QUALITY, "产品质量问题", "用了两天就坏了,开不了机", SHIPPED),  # 产品质量问题处理流程
    (K.QUALITY, "Arrived damaged", "The glass is broken, photos attached", SHIPPED),
    (K.RETURN, "七天无理由退货", "不喜欢这个颜色,想退货", SHIPPED),  # 退货流程
    (K.RETURN, "Refund please", "I would like to return it for a refund", SHIPPED),
    (K.EXCHANGE, "尺码不合适", "穿着小了,能换一个大一号的吗", SHIPPED),  # 顾客换货
    (K.COMPENSATION, "不影响使用", "外包装压了一下,不退了,给点补偿吧", SHIPPED),  # 补偿流程
    (K.INVOICE, "开发票", "买家要求提供发票,抬头写公司名称", SHIPPED),  # 开票流程
    (K.OUT_OF_STOCK, "缺货", "客服说这个颜色缺货,要等几天?", PAID),  # 缺货问题
    (K.PLATFORM_COMPLAINT, "后台投诉", "买家在后台投诉了,要求小二介入", SHIPPED),  # 投诉维权
    (K.PLATFORM_COMPLAINT, "小二介入", "已申请小二介入处理", SHIPPED),  # 报备小二介入处理
    (K.LOGISTICS, "我要投诉", "买家投诉物流问题,快递三天没动", SHIPPED),  # seed 000: 物流查件
    (K.GENERAL_AFTERSALES, "收到了", "请问这个怎么安装?", SHIPPED),  # a paid order, no known path
]


@pytest.mark.parametrize(
    ("kind", "subject", "text", "fields"),
    SENTENCES,
    ids=[f"{kind.value}-{i}" for i, (kind, *_) in enumerate(SENTENCES)],
)
def test_a_contact_is_classified_from_what_it_says_and_its_order(
    kind: TicketKind, subject: str, text: str, fields: dict[str, Any]
) -> None:
    assert classify(contact("c", subject=subject, text=text, **fields)) is kind


def test_every_kind_is_reachable_from_a_sentence() -> None:
    assert {kind for kind, *_ in SENTENCES} == set(TicketKind)


@pytest.mark.parametrize("kind", list(TicketKind))
def test_an_explicit_kind_from_upstream_wins(kind: TicketKind) -> None:
    """The order centre or the complaint feed knows what it sends: no keyword overrides it,
    not even an unpaid system order."""
    ticket = contact(
        "c",
        subject="买家要求提供发票",
        text="还没发货",
        order_id="o-1",
        paid=False,
        channel=Channel.SYSTEM,
        kind=kind,
    )
    assert classify(ticket) is kind


def test_an_unpaid_order_from_the_order_centre_is_a_reminder_whatever_it_says() -> None:
    reminder = contact("c", subject="买家要求提供发票", order_id="o-1", paid=False)
    assert classify(reminder.model_copy(update={"channel": Channel.SYSTEM})) is K.UNPAID_REMINDER
    # The same words from the customer in chat are not a reminder: the customer asks.
    assert classify(reminder) is K.INVOICE
    # A paid order from the order centre is no reminder either.
    assert classify(contact("c", subject="在吗", channel=Channel.SYSTEM, **PAID)) is not (
        K.UNPAID_REMINDER
    )


@pytest.mark.parametrize("order", [{}, UNPAID], ids=["no-order", "unpaid"])
@pytest.mark.parametrize("subject", ["什么时候发货?", "用什么快递?", "When will you ship?"])
def test_a_delivery_question_without_a_paid_order_is_a_presale_inquiry(
    subject: str, order: dict[str, Any]
) -> None:
    kind = classify(contact("c", subject=subject, **order))
    assert kind is K.INQUIRY and role_for_kind(kind) is Role.PRESALE


def test_urging_shipment_of_a_shipped_order_is_a_logistics_question() -> None:
    assert classify(contact("c", subject="还没发货吗?", **PAID)) is K.URGE_SHIPMENT
    assert classify(contact("c", subject="还没发货吗?", **SHIPPED)) is K.LOGISTICS


def test_tracking_a_paid_order_not_yet_shipped_is_urging_shipment() -> None:
    assert classify(contact("c", subject="查一下物流", **SHIPPED)) is K.LOGISTICS
    assert classify(contact("c", subject="查一下物流", **PAID)) is K.URGE_SHIPMENT


def test_the_more_specific_problem_wins_over_the_general_one() -> None:
    # A broken item that also arrived late is a quality problem first.
    assert classify(contact("c", subject="快递太慢,收到还是坏了的", **SHIPPED)) is K.QUALITY
    # Compensation for a slow delivery is asked for explicitly: compensation.
    assert classify(contact("c", subject="物流太慢了,要求赔偿", **SHIPPED)) is K.COMPENSATION
    # Subject and text both count, case-insensitively.
    assert classify(contact("c", subject="Hello", text="WRONG ITEM sent", **SHIPPED)) is (
        K.WRONG_ITEM
    )


@pytest.mark.parametrize("kind", list(TicketKind))
def test_only_inquiries_and_reminders_go_to_presale(kind: TicketKind) -> None:
    presale = kind in (K.INQUIRY, K.UNPAID_REMINDER)
    assert role_for_kind(kind) is (Role.PRESALE if presale else Role.AFTERSALES)


def test_what_the_platform_sends_is_a_platform_complaint() -> None:
    ticket = contact("c", subject="买家申请退款", channel=Channel.PLATFORM, **SHIPPED)
    assert classify(ticket) is K.PLATFORM_COMPLAINT
