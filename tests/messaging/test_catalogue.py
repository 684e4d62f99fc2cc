"""The catalogue is the one place for queues and message types; everything else follows it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from services.catalogue import CATALOGUE
from shared.bootstrap import Service
from shared.messaging.catalogue import Catalogue, MessageType, Queue
from shared.tickets.contracts import CommandReply, TicketCommand

ROOT = Path(__file__).parents[2]
PLATFORM = ("shared/messaging", "shared/bootstrap.py", "shared/observability.py", "shared/db")


def test_every_service_room_has_a_worker_built_against_the_catalogue() -> None:
    rooms = {p.parent.name for p in (ROOT / "services").glob("*/worker.py")}
    assert rooms == set(CATALOGUE.services)
    for name in CATALOGUE.services:
        service: Service = importlib.import_module(f"services.{name}.worker").SERVICE
        assert service.name == name
        assert service.queues == CATALOGUE.queues_of(name)
        for queue in service.queues:  # a handler for exactly the types the queue takes
            assert set(service.routes[queue]) == {k.name for k in CATALOGUE.accepted(queue)}


def test_every_queue_has_a_consumer_and_every_type_a_queue_or_a_requester() -> None:
    consumed = {q for s in CATALOGUE.services for q in CATALOGUE.queues_of(s)}
    assert consumed == set(CATALOGUE.queue_names)
    replies = {k.reply for k in CATALOGUE.types if k.reply is not None}
    for kind in CATALOGUE.types:
        assert kind.queues or kind.model in replies, kind.name


def test_the_platform_names_no_business_message_type() -> None:
    names = [k.name for k in CATALOGUE.types]
    for place in PLATFORM:
        path = ROOT / place
        for file in [path] if path.is_file() else path.rglob("*.py"):
            text = file.read_text(encoding="utf-8")
            assert not [n for n in names if f'"{n}"' in text], file


def test_drift_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="undeclared queue"):
        Catalogue(queues=(), types=(MessageType(CommandReply, ("nowhere",), "x"),))
    with pytest.raises(ValueError, match="declared twice"):
        Catalogue(
            queues=(Queue("q", ("s",), "q"),),
            types=(
                MessageType(TicketCommand, ("q",), "a"),
                MessageType(TicketCommand, ("q",), "b"),
            ),
        )
    with pytest.raises(ValueError, match=r"presale: no handler for .*ticket\.command"):
        Service(name="presale", catalogue=CATALOGUE, handlers={})
