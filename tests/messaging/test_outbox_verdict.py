"""What the relay does with a row, from what its publish returned or raised."""

from __future__ import annotations

import aiormq
from aiormq import spec
from aiormq.abc import DeliveredMessage
from pamqp.header import ContentHeader

from shared.messaging.outbox import Fate, verdict


def test_a_confirmed_row_is_sent() -> None:
    assert verdict(spec.Basic.Ack(delivery_tag=1)).fate is Fate.SENT


def test_a_row_returned_for_want_of_a_queue_is_set_aside_with_the_reason() -> None:
    returned = spec.Basic.Return(
        reply_code=312, reply_text="NO_ROUTE", exchange="ticketq", routing_key="gone"
    )
    message = DeliveredMessage(delivery=returned, header=ContentHeader(), body=b"", channel=None)  # type: ignore[arg-type]
    v = verdict(aiormq.exceptions.PublishError(message, returned))
    assert v.fate is Fate.SET_ASIDE
    assert v.reason == (
        "returned 312 NO_ROUTE: no queue for routing key 'gone' on exchange 'ticketq'"
    )


def test_a_row_the_broker_refused_is_tried_again() -> None:
    v = verdict(aiormq.exceptions.DeliveryError(None, spec.Basic.Nack(delivery_tag=1)))
    assert v == verdict(aiormq.exceptions.DeliveryError(None, spec.Basic.Nack(delivery_tag=2)))
    assert v.fate is Fate.RETRY and "Nack" in v.reason


def test_a_row_lost_with_the_channel_is_left_as_it_was() -> None:
    for lost in (aiormq.exceptions.ChannelInvalidStateError("closed"), TimeoutError()):
        assert verdict(lost).fate is Fate.UNSENT
