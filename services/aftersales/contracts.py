"""After-sales' upstream messages: the platform's events on an intervention (小二介入, SPEC §7).

The platform (Tmall/Taobao) opens an intervention on an order when a customer asks it to rule,
with a deadline for the shop's evidence, and later rules. Both arrive on `platform`, a queue
after-sales consumes: the ruling answers the flow's wait for it, through the ticket aggregate.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.messaging.envelope import Contract
from shared.tickets.contracts import SOURCE_PATTERN


class _PlatformEvent(Contract):
    intervention_id: str = Field(
        min_length=1, max_length=100, description="The platform's id for the intervention"
    )
    order_id: str = Field(min_length=1, max_length=100, description="The order it is about")
    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="The upstream system, e.g. `tmall-platform`",
        examples=["tmall-platform"],
    )


class PlatformInterventionOpened(_PlatformEvent):
    """The platform intervened (小二介入): the shop submits its evidence by `evidence_due_at`."""

    TYPE: ClassVar[str] = "platform.intervention_opened"

    opened_at: AwareDatetime
    evidence_due_at: AwareDatetime = Field(description="The platform's deadline for evidence")
    reason: str = Field(min_length=1, max_length=500, description="What the customer claims")


class InFavourOf(StrEnum):
    SHOP = "shop"
    CUSTOMER = "customer"


class PlatformRuling(_PlatformEvent):
    """The platform ruled on the intervention; the shop does what it says."""

    TYPE: ClassVar[str] = "platform.ruling"

    ruled_at: AwareDatetime
    in_favour_of: InFavourOf
    note: str | None = Field(None, min_length=1, max_length=500, description="The ruling's words")
