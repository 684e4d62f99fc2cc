"""Where the desks' flows live: one YAML file per ticket kind and version in each desk's room
(`services/presale/flows/`, `services/aftersales/flows/`, named `KIND.vN.yaml`).

Every desk loads them all when its worker module builds its Service (any desk applies any
ticket's command, the `desk` queue being shared), so an invalid flow stops the service before it
starts. See `shared.flows.load` for the validation and how versions are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shared.flows.load import load_flows
from shared.flows.model import FlowBook

_HERE = Path(__file__).parent
FLOW_DIRS = (_HERE / "presale" / "flows", _HERE / "aftersales" / "flows")


def load_all(folders: Iterable[Path] | None = None) -> FlowBook:
    """Every flow of every desk (`FLOW_DIRS`), validated (`FlowError` on the first invalid one)."""
    return load_flows(FLOW_DIRS if folders is None else folders)
