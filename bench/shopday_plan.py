"""The Double-11 shop day as data (双11), and the seeded plan of its contacts and order events.

Everything the day is made of is at the top of this file: the arrival shape per hour, the mix
of ticket kinds with each kind's path (the moves simulated agents and staff make, from the flows
in `services/*/flows/`), the roster of the simulated shop, and the think times. `plan_day`
turns them into a reproducible list of arrivals for a load factor and a seed.

What "normal" is (SPEC §3, seeds 000 and 003): the department is staffed in shifts (seed 000:
白班 / 半白班 / 晚班); a shop needs a customer-service department from about ten agents (seed
003: 客服数量可能在10个以上), so ten agents over two shifts, five per shift (three pre-sale, two
after-sales). The seeds give no contacts per agent-hour; seed 002 asks for an answer within
10-30 s and agents chat with several customers at once (seed 003), so we take 12 contacts per
agent-hour (a five-minute conversation each). Normal peak: 5 agents x 12 = 60 contacts an hour.
Double-11 is run at 1x, 3x and 10x of that peak, with the day's shape below.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.finance.contracts import InvoiceArgs, PayoutArgs, RefundArgs
from services.intake.contracts import OrderPaid, OrderShipped, OrderSigned, SubmitTicket
from services.warehouse.contracts import OrderChangeArgs, ReceiveReturnArgs, UrgeShipmentArgs
from shared.messaging.envelope import Contract
from shared.tickets.contracts import Channel, Customer, Order, OrderItem, RecordResultArgs
from shared.tickets.roles import Role, TicketKind

SHOP_TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 11)  # a Wednesday; the sample calendar staffs 00:00-02:00 and 08:00-24:00

AGENTS_PER_SHIFT = 5  # three pre-sale and two after-sales agents (seeds 000, 003)
CONTACTS_PER_AGENT_HOUR = 12  # an assumption: the seeds give none (see the module docstring)
NORMAL_PEAK_PER_HOUR = AGENTS_PER_SHIFT * CONTACTS_PER_AGENT_HOUR  # 60

# Contacts per hour of 11-11 (shop time), as a multiple of the normal peak hour: the midnight
# pre-sale rush (定金/尾款 paid at 00:00), a quiet night while the department is closed (contacts
# wait for 08:00), and the lunch (12-14) and evening (20-23) peaks.
SHAPE: tuple[float, ...] = (
    4.0, 1.2, 0.3, 0.15, 0.1, 0.1, 0.15, 0.3,  # 00-07
    0.6, 0.8, 0.9, 1.0, 1.6, 1.8, 1.5, 1.0,  # 08-15
    0.9, 0.9, 1.0, 1.2, 1.8, 2.0, 1.9, 1.6,  # 16-23
)  # fmt: skip
MIDNIGHT_RUSH_MINUTES = 6.0  # hour 0's contacts come mostly in its first minutes (mean)

FOLLOW_UP_SHARE = 0.12  # customers with an order who write again while it is open (未处理完毕)
REPUBLISH_SAME_ID = 0.05  # the gateway publishes a contact twice (same message id)
REPUBLISH_NEW_ID = 0.02  # ... or again under a new message id (same source and external id)
ORDER_EVENT_TWICE = 0.05  # the order centre sends an order event twice
OPERATION_RESENT = 0.10  # staff re-send an operation with its command id (answer was slow)
OPERATION_DOUBLE = 0.05  # staff send an operation twice (a new command: the ledger refuses it)


# --- The simulated shop's roster (data, loaded with `roster.load` like `ticketq roster load`) ----

SHIFTS = {
    "midnight": {"start": "00:00", "end": "02:00"},  # 双11 midnight rush crew
    "early": {"start": "08:00", "end": "16:30"},
    "late": {"start": "15:30", "end": "23:59"},
}
ROSTER: tuple[tuple[str, str, Role, tuple[str, ...]], ...] = (
    ("p1", "王芳", Role.PRESALE, ("midnight", "early")),
    ("p2", "李娜", Role.PRESALE, ("midnight", "early")),
    ("p3", "周敏", Role.PRESALE, ("early",)),
    ("p4", "吴婷", Role.PRESALE, ("midnight", "late")),
    ("p5", "郑洁", Role.PRESALE, ("late",)),
    ("p6", "冯雪", Role.PRESALE, ("late",)),
    ("a1", "张伟", Role.AFTERSALES, ("midnight", "early")),
    ("a2", "刘洋", Role.AFTERSALES, ("early",)),
    ("a3", "陈杰", Role.AFTERSALES, ("midnight", "late")),
    ("a4", "杨帆", Role.AFTERSALES, ("late",)),
    ("w1", "陈强", Role.WAREHOUSE, ("midnight", "early")),
    ("w2", "黄磊", Role.WAREHOUSE, ("late",)),
    ("f1", "杨静", Role.FINANCE, ("midnight", "early")),
    ("f2", "许琳", Role.FINANCE, ("late",)),
    ("s1", "赵敏", Role.SUPERVISOR, ("midnight", "early")),
    ("s2", "孙丽", Role.SUPERVISOR, ("late",)),
)


def roster_mapping() -> dict[str, object]:
    return {
        "shifts": SHIFTS,
        "agents": [
            {"id": i, "name": n, "roles": [r.value], "shifts": list(s), "online": True}
            for i, n, r, s in ROSTER
        ],
    }


def on_shift(shifts: Sequence[str], at: datetime) -> bool:
    local = at.astimezone(SHOP_TZ).time()
    return any(_shift_time(s, "start") <= local < _shift_time(s, "end") for s in shifts)


def next_on_shift(shifts: Sequence[str], at: datetime) -> datetime:
    """`at`, or the next start of one of `shifts` (a person acts only while on shift)."""
    if on_shift(shifts, at):
        return at
    local = at.astimezone(SHOP_TZ)
    starts = [
        datetime.combine(local.date() + timedelta(days=d), _shift_time(s, "start"), SHOP_TZ)
        for d in (0, 1)
        for s in shifts
    ]
    return min(s for s in starts if s > local)


def _shift_time(shift: str, end: str) -> time:
    return time.fromisoformat(SHIFTS[shift][end])


def staff_of(role: Role) -> list[tuple[str, tuple[str, ...]]]:
    return [(i, s) for i, _, r, s in ROSTER if r is role]


# --- Think times (shop time) --------------------------------------------------------------------

Think = Callable[[random.Random], timedelta]


def first_reply_think(rng: random.Random) -> timedelta:
    """Seed 002: answer within 10-30 s; one in twenty is slow (busy with other chats)."""
    if rng.random() < 0.05:
        return timedelta(seconds=rng.uniform(150, 600))  # a 2-minute breach the agent earns
    return timedelta(seconds=rng.uniform(5, 25))


def agent_think(rng: random.Random) -> timedelta:
    return timedelta(seconds=rng.uniform(20, 180))


def staff_think(rng: random.Random) -> timedelta:
    """Warehouse and finance work their task lists in batches."""
    return timedelta(minutes=rng.uniform(5, 45))


def customer_think(rng: random.Random) -> timedelta:
    """The customer answers, sends photos, or posts the parcel back."""
    return timedelta(minutes=rng.uniform(10, 120))


# --- Each kind's path: the moves of its first handler, its customer and the staff ---------------


@dataclass(frozen=True)
class Step:
    """The first handler answers at the flow's current step (`ticketq step`)."""

    answer: str
    reason: str | None = None


@dataclass(frozen=True)
class ByCustomer:
    """The customer takes their time before the next step (answers, sends the parcel back)."""


@dataclass(frozen=True)
class Task:
    """Staff of `role` complete the flow's open handoff with an operation (its arguments)."""

    role: Role
    args: Callable[[str, Decimal], Contract]


@dataclass(frozen=True)
class Upstream:
    """The order centre reports an order event (published to intake like a contact)."""

    event: str  # paid | shipped | signed


@dataclass(frozen=True)
class AwaitPaid:
    """The unpaid order's `order.paid` comes when the customer pays (planned in advance)."""


Move = Step | ByCustomer | Task | Upstream | AwaitPaid
Path = tuple[Move, ...]


def _refund(h: str, amount: Decimal) -> Contract:
    return RefundArgs(handoff_id=h, amount=amount, reason="七天无理由")


def _payout(h: str, amount: Decimal) -> Contract:
    return PayoutArgs(handoff_id=h, amount=Decimal("20.00"))  # under the approval threshold


def _shipped(h: str, amount: Decimal) -> Contract:
    return RecordResultArgs(handoff_id=h, outcome="done", data={"tracking": f"SF{h[-8:]}"})


WH, FIN = Role.WAREHOUSE, Role.FINANCE


@dataclass(frozen=True)
class KindMix:
    share: float
    subject: str
    order: str  # none | unpaid | paid | shipped | signed: the order the contact is about
    paths: tuple[tuple[float, Path], ...]  # (weight, path)
    channel: Channel = Channel.WANGWANG


MIX: dict[TicketKind, KindMix] = {
    TicketKind.INQUIRY: KindMix(
        0.34,
        "这款有现货吗?有优惠券吗?",
        "none",
        (
            (0.6, (Step("need_understood"), Step("deal"), Step("farewell"))),
            (0.4, (Step("need_understood"), Step("no_deal", reason="price_too_high"))),
        ),
    ),
    TicketKind.UNPAID_REMINDER: KindMix(
        0.14,
        "订单已拍下未付款",
        "unpaid",
        ((1.0, (Step("reminded"), AwaitPaid(), Step("paid"), Step("thanked"))),),
        channel=Channel.SYSTEM,
    ),
    TicketKind.LOGISTICS: KindMix(
        0.12,
        "快递三天了还没到",
        "shipped",
        (
            (
                1.0,
                (
                    Step("slow_delivery"),
                    Step("past_due"),
                    Step("accepted"),
                    Task(FIN, _payout),
                    Upstream("signed"),
                    Step("confirmed"),
                ),
            ),
        ),
    ),
    TicketKind.URGE_SHIPMENT: KindMix(
        0.10,
        "付款四天了还没发货",
        "paid",
        (
            (
                1.0,
                (
                    Step("over_72h_unshipped"),
                    Step("gift_offered"),
                    Task(WH, lambda h, a: UrgeShipmentArgs(handoff_id=h, delay_reason="双11爆单")),
                    Upstream("shipped"),
                    Step("reported"),
                ),
            ),
        ),
    ),
    TicketKind.RETURN: KindMix(
        0.08,
        "我要退货",
        "signed",
        (
            (
                1.0,
                (
                    Step("returning"),
                    Step("within_window"),
                    ByCustomer(),
                    Step("sent_back"),
                    Task(WH, lambda h, a: ReceiveReturnArgs(handoff_id=h, inspection="passed")),
                    Step("refund"),
                    Task(FIN, _refund),
                    Step("told"),
                ),
            ),
        ),
    ),
    TicketKind.ORDER_CHANGE: KindMix(
        0.05,
        "能帮我改地址吗",
        "paid",
        (
            (
                1.0,
                (
                    Step("not_printed"),
                    Task(WH, lambda h, a: OrderChangeArgs(handoff_id=h, change="地址改为公司")),
                    Step("told"),
                ),
            ),
        ),
    ),
    TicketKind.WRONG_ITEM: KindMix(
        0.04,
        "发错货了,颜色不对",
        "signed",
        (
            (
                1.0,
                (
                    ByCustomer(),
                    Step("photos_received"),
                    Step("shop_error"),
                    Step("accepted"),
                    Task(FIN, _payout),
                    Step("confirmed"),
                ),
            ),
        ),
    ),
    TicketKind.COMPENSATION: KindMix(
        0.03,
        "有划痕,要求补偿",
        "signed",
        (
            (
                1.0,
                (
                    Step("photos_received"),
                    Step("minor"),
                    Step("agreed"),
                    Task(FIN, _payout),
                    Step("told"),
                ),
            ),
        ),
    ),
    TicketKind.EXCHANGE: KindMix(
        0.03,
        "尺码不合适想换货",
        "signed",
        (
            (
                1.0,
                (
                    Step("agreed"),
                    ByCustomer(),
                    Step("sent_back"),
                    Task(WH, lambda h, a: ReceiveReturnArgs(handoff_id=h, inspection="passed")),
                    Step("ship"),
                    Task(WH, _shipped),
                    Step("told"),
                ),
            ),
        ),
    ),
    TicketKind.OUT_OF_STOCK: KindMix(
        0.03,
        "客服说缺货,怎么办",
        "paid",
        ((1.0, (Step("refund"), Task(FIN, _refund), Step("told"))),),
    ),
    TicketKind.INVOICE: KindMix(
        0.02,
        "麻烦开发票",
        "signed",
        (
            (
                1.0,
                (
                    Step("received"),
                    Task(
                        FIN,
                        lambda h, a: InvoiceArgs(
                            handoff_id=h, title="某某公司", amount=a, quantity=1, einvoice_id=h
                        ),
                    ),
                    Step("sent"),
                ),
            ),
        ),
    ),
    TicketKind.PLATFORM_COMPLAINT: KindMix(
        0.02,
        "买家发起投诉",
        "signed",
        (
            (
                1.0,
                (
                    Step("not_willing"),
                    Step("not_at_fault"),
                    ByCustomer(),
                    Step("ruled_for_shop"),
                    Step("told"),
                ),
            ),
        ),
        channel=Channel.PLATFORM,
    ),
}


# --- The plan ------------------------------------------------------------------------------------


@dataclass
class Contact:
    """A customer's contact, opening a ticket (`follow_up_of` None) or following one up."""

    at: datetime  # scheduled send time, shop clock
    submit: SubmitTicket
    kind: TicketKind
    path: Path = ()
    follow_up_of: str | None = None  # the opening contact's external id
    republish: str | None = None  # same_id | new_id
    follow_ups: list[Contact] = field(default_factory=list)
    paid_at: datetime | None = None  # an unpaid order's payment, when the customer pays
    seed: int = 0

    @property
    def key(self) -> str:
        return self.submit.external_id


@dataclass(frozen=True)
class OrderEvent:
    at: datetime
    event: OrderPaid
    twice: bool

    @property
    def order_id(self) -> str:
        return self.event.order_id


@dataclass(frozen=True)
class DayPlan:
    load: float
    shrink: float
    contacts: list[Contact]  # opening contacts, each with its follow-ups, by send time
    order_events: list[OrderEvent]  # planned in advance (payments); others come from the cases

    @property
    def sent(self) -> list[Contact]:
        every = [*self.contacts, *(f for c in self.contacts for f in c.follow_ups)]
        return sorted(every, key=lambda c: c.at)


def day_start() -> datetime:
    return datetime.combine(DAY, time(0), SHOP_TZ)


def plan_day(
    load: float, *, shrink: float, seed: int = 11, hours: tuple[int, int] = (0, 24)
) -> DayPlan:
    """The day's contacts at `load` times the normal peak, divided by `shrink` (the shape and
    the ratios kept, the absolute number made small enough for one machine)."""
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = [MIX[k].share for k in kinds]
    contacts: list[Contact] = []
    events: list[OrderEvent] = []
    for hour in range(*hours):
        expected = NORMAL_PEAK_PER_HOUR * load * SHAPE[hour] / shrink
        count = int(expected) + (rng.random() < expected - int(expected))
        start = day_start() + timedelta(hours=hour)
        for _ in range(count):
            if hour == 0:
                offset = min(rng.expovariate(1 / MIDNIGHT_RUSH_MINUTES), 59.9) * 60
            else:
                offset = rng.uniform(0, 3600)
            kind = rng.choices(kinds, weights)[0]
            contact = _contact(rng, len(contacts) + 1, kind, start + timedelta(seconds=offset))
            contacts.append(contact)
            if contact.paid_at is not None:
                assert contact.submit.order is not None
                paid = OrderPaid(
                    order_id=contact.submit.order.id, source="order-centre", paid_at=contact.paid_at
                )
                events.append(OrderEvent(contact.paid_at, paid, rng.random() < ORDER_EVENT_TWICE))
    contacts.sort(key=lambda c: c.at)
    events.sort(key=lambda e: e.at)
    return DayPlan(load, shrink, contacts, events)


def _contact(rng: random.Random, n: int, kind: TicketKind, at: datetime) -> Contact:
    mix = MIX[kind]
    key = f"d11-{n:05d}"
    order = _order(mix.order, f"o-{key}", at, rng)
    customer = Customer(id=f"tb-{n:05d}", nick=f"买家{n:05d}")
    channel = mix.channel
    submit = SubmitTicket(
        source="im-gateway" if channel is Channel.WANGWANG else f"{channel.value}-feed",
        external_id=key,
        channel=channel,
        customer=customer,
        order=order,
        subject=mix.subject,
        occurred_at=at,
    )
    path = rng.choices([p for _, p in mix.paths], [w for w, _ in mix.paths])[0]
    roll = rng.random()
    republish = (
        "same_id"
        if roll < REPUBLISH_SAME_ID
        else "new_id"
        if roll < REPUBLISH_SAME_ID + REPUBLISH_NEW_ID
        else None
    )
    contact = Contact(at, submit, kind, path, republish=republish, seed=rng.randrange(2**32))
    if mix.order == "unpaid":
        contact.paid_at = at + timedelta(minutes=rng.uniform(20, 240))
    if order is not None and rng.random() < FOLLOW_UP_SHARE:
        again = at + timedelta(minutes=rng.uniform(3, 20))
        follow = submit.model_copy(
            update={
                "external_id": f"{key}-again",
                "channel": Channel.PHONE if channel is Channel.WANGWANG else channel,
                "source": "phone-system" if channel is Channel.WANGWANG else submit.source,
                "subject": "还在吗?刚才的问题怎么样了",
                "occurred_at": again,
            }
        )
        contact.follow_ups.append(Contact(again, follow, kind, follow_up_of=key))
    return contact


def _order(state: str, order_id: str, at: datetime, rng: random.Random) -> Order | None:
    if state == "none":
        return None
    amount = Decimal(rng.choice(("59.00", "89.00", "129.00", "199.00")))
    # Unpaid: placed half an hour ago. Paid, not shipped: 4 days ago, past the 72 h mark.
    placed = at - {"unpaid": timedelta(minutes=30), "paid": timedelta(days=4)}.get(
        state, timedelta(days=5)
    )
    paid = None if state == "unpaid" else placed + timedelta(minutes=2)
    return Order(
        id=order_id,
        amount=amount,
        placed_at=placed,
        paid_at=paid,
        shipped_at=placed + timedelta(days=1) if state in ("shipped", "signed") else None,
        signed_at=placed + timedelta(days=2) if state == "signed" else None,
        items=[OrderItem(sku="CUP-500", title="保温杯 500ml", quantity=1, unit_price=amount)],
    )


def upstream_event(kind: str, order_id: str, at: datetime) -> Contract:
    if kind == "shipped":
        return OrderShipped(order_id=order_id, source="order-centre", shipped_at=at, carrier="SF")
    if kind == "signed":
        return OrderSigned(order_id=order_id, source="order-centre", signed_at=at)
    raise ValueError(f"unknown order event {kind!r}")


def new_message_id() -> str:
    return str(uuid.uuid4())
