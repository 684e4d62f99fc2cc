from __future__ import annotations

import pytest

from shared.db import Pool
from tests.timers.support import EFFECTS


@pytest.fixture
async def pool(db: Pool) -> Pool:
    """The test's database with the effects table the counting fire handler writes."""
    await db.execute(EFFECTS)
    return db
