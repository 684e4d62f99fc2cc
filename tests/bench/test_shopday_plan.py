"""The shop day's plan and its compressed clock, without servers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bench.shopday_plan import (
    MIX,
    NORMAL_PEAK_PER_HOUR,
    SHAPE,
    SHOP_TZ,
    next_on_shift,
    on_shift,
    plan_day,
)
from services.intake.classify import classify
from shared.clock import StartedClock

T = datetime(2026, 11, 10, 16, 0, tzinfo=UTC)  # 11-11 00:00 in Shanghai


def test_a_fast_clock_runs_speed_times_the_real_pace() -> None:
    clock = StartedClock(T, speed=1000.0)
    before = clock.now()
    time.sleep(0.05)
    ran = (clock.now() - before).total_seconds()
    assert 45 <= ran <= 150  # 50 ms of real time is 50 s of shop time, give or take the CPU


def test_clocks_given_the_same_origin_read_the_same_time() -> None:
    origin = time.time() - 2.0  # the clock read T two real seconds ago
    first, second = (StartedClock(T, speed=60.0, origin=origin) for _ in range(2))
    assert abs((first.now() - second.now()).total_seconds()) < 0.5
    assert abs((first.now() - (T + timedelta(seconds=120))).total_seconds()) < 3


async def test_a_fast_clock_wakes_a_waiter_at_its_shop_time() -> None:
    clock = StartedClock(T, speed=3600.0)  # an hour a second
    started = time.monotonic()
    await clock.wait_until(T + timedelta(minutes=6), asyncio.Event())
    assert 0.08 <= time.monotonic() - started < 1.0
    assert clock.now() >= T + timedelta(minutes=6)


def test_the_same_seed_plans_the_same_day() -> None:
    first, again = plan_day(1, shrink=20, seed=7), plan_day(1, shrink=20, seed=7)
    assert [(c.at, c.key, c.kind) for c in first.sent] == [
        (c.at, c.key, c.kind) for c in again.sent
    ]


def test_the_day_keeps_its_shape_as_load_grows() -> None:
    def per_hour(load: float) -> Counter[int]:
        plan = plan_day(load, shrink=4, seed=1)
        return Counter(c.at.astimezone(SHOP_TZ).hour for c in plan.contacts)

    low, high = per_hour(1), per_hour(10)
    assert sum(high.values()) / sum(low.values()) == pytest.approx(10, rel=0.1)
    assert max(high, key=lambda h: high[h]) == 0  # the midnight rush is the biggest hour
    for hour in (12, 13, 20, 21):  # the lunch and evening peaks beat the quiet night
        assert high[hour] > 5 * high[4]
    expected = NORMAL_PEAK_PER_HOUR * 10 * SHAPE[21] / 4
    assert abs(high[21] - expected) <= 1


def test_each_contact_is_classified_as_the_kind_its_path_is_for() -> None:
    plan = plan_day(10, shrink=2, seed=5)
    assert {c.kind for c in plan.contacts} == set(MIX)
    for contact in plan.contacts:  # follow-ups join their ticket: their words do not matter
        assert classify(contact.submit) is contact.kind, contact.submit


def test_follow_ups_and_payments_belong_to_orders() -> None:
    plan = plan_day(3, shrink=2, seed=5)
    follow_ups = [f for c in plan.contacts for f in c.follow_ups]
    assert follow_ups and all(f.submit.order is not None for f in follow_ups)
    for contact in plan.contacts:
        for follow_up in contact.follow_ups:
            assert follow_up.submit.order == contact.submit.order and follow_up.at > contact.at
    ordered = {c.submit.order.id for c in plan.contacts if c.submit.order is not None}
    assert plan.order_events and {e.order_id for e in plan.order_events} <= ordered


def test_people_act_only_on_their_shifts() -> None:
    three_am = datetime(2026, 11, 11, 3, 0, tzinfo=SHOP_TZ)
    assert not on_shift(("midnight", "early"), three_am)
    assert next_on_shift(("midnight", "early"), three_am) == three_am.replace(hour=8)
    late_night = datetime(2026, 11, 11, 23, 59, 30, tzinfo=SHOP_TZ)
    assert next_on_shift(("midnight",), late_night) == datetime(2026, 11, 12, 0, 0, tzinfo=SHOP_TZ)
