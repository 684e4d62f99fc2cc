"""The message contracts as files, for publishers and consumers in any language.

Generated from the pydantic models named in `services.catalogue` by `python -m contracts.generate`:
`schemas/<type>.v<version>.json` (JSON Schema 2020-12 of each whole message), `envelope.json`
(the generic envelope) and `asyncapi.yaml` (AsyncAPI 3.0: broker, channels, messages,
operations). `python -m contracts.generate --check` fails when they are out of date.
"""

from __future__ import annotations

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent

__all__ = ["CONTRACTS_DIR"]
