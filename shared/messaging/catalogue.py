"""What a catalogue of queues and message types is: the platform's side of it.

The platform names no business message type. The project's one catalogue
(`services/catalogue.py`) declares each queue and each message type once; topology, worker
registration, the contracts and compose derive from it (and a test fails on drift).
A message type's name and version are declared on its contract (`Contract.TYPE`, `VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.messaging.envelope import Contract


@dataclass(frozen=True)
class Queue:
    """A work queue, consumed by the `consumers` services (competing); its DLQ is `<name>.dlq`."""

    name: str
    consumers: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class MessageType:
    model: type[Contract]
    queues: tuple[str, ...]  # who takes it; () for a reply sent to a `reply_to` queue
    summary: str
    # Handled alike on whichever of its queues it lands: dedup and stored answers are then
    # system-wide, not per queue (a re-sent command that lands on another replica's queue).
    any_queue: bool = False
    reply: type[Contract] | None = None  # a request's answer, sent to its `reply_to` queue

    @property
    def name(self) -> str:
        return self.model.TYPE

    @property
    def version(self) -> int:
        return self.model.VERSION

    def inbox_scope(self, queue: str) -> str:
        return self.name if self.any_queue else queue


@dataclass(frozen=True)
class Catalogue:
    queues: tuple[Queue, ...]
    types: tuple[MessageType, ...]
    _by_name: dict[str, MessageType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError(f"a queue is declared twice: {names}")
        by_name: dict[str, MessageType] = {}
        for kind in self.types:
            if not kind.model.TYPE:
                raise ValueError(f"{kind.model.__name__} declares no TYPE")
            if kind.name in by_name:
                raise ValueError(f"message type {kind.name!r} is declared twice")
            if unknown := set(kind.queues) - set(names):
                raise ValueError(f"{kind.name} names undeclared queue(s) {sorted(unknown)}")
            if kind.reply is not None and kind.reply not in {t.model for t in self.types}:
                raise ValueError(f"{kind.name}'s reply {kind.reply.__name__} is not declared")
            by_name[kind.name] = kind
        object.__setattr__(self, "_by_name", by_name)

    @property
    def queue_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.queues)

    def queue(self, name: str) -> Queue:
        return next(q for q in self.queues if q.name == name)

    def type_named(self, name: str) -> MessageType | None:
        return self._by_name.get(name)

    def accepted(self, queue: str) -> tuple[MessageType, ...]:
        """The types `queue` takes, in declaration order."""
        return tuple(t for t in self.types if queue in t.queues)

    def of(self, model: type[Contract]) -> MessageType:
        kind = self._by_name.get(model.TYPE)
        if kind is None or kind.model is not model:
            raise KeyError(f"{model.__name__} is not in the catalogue")
        return kind

    def queues_of(self, service: str) -> tuple[str, ...]:
        """The queues `service` consumes."""
        return tuple(q.name for q in self.queues if service in q.consumers)

    @property
    def services(self) -> tuple[str, ...]:
        """Every service (worker) that consumes a queue, in declaration order."""
        return tuple(dict.fromkeys(s for q in self.queues for s in q.consumers))
