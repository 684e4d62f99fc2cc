"""The line of a YAML file that a path such as `agents[2].roles` or `shifts.early.start` names.

Domain checks (e.g. `Roster.from_mapping`) see parsed data and say *where* as such a path; the
CLI, which has the file, turns that into a line number for people.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TOKENS = re.compile(r"[^.\[\]]+|\[[^\]]+\]")


def line_of(text: str, path: str) -> int | None:
    """The 1-based line where `path` is written in the YAML `text`; None if it is not there.

    A step `name` enters a mapping's key, `[i]` a list's item, and `[id=x]` the list item whose
    `id` is x; a path that stops part-way gives the line of the deepest step found.
    """
    try:
        node: Node | None = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    line = None
    for step in _TOKENS.findall(path):
        node, at = _step(node, step)
        if node is None:
            break
        line = at
    return line


def _step(node: Node | None, step: str) -> tuple[Node | None, int]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == step:
                return value, key.start_mark.line + 1
    if isinstance(node, SequenceNode) and step.startswith("["):
        wanted = step[1:-1]
        for i, item in enumerate(node.value):
            if wanted == str(i) or (
                wanted.startswith("id=") and _field(item, "id") == wanted.removeprefix("id=")
            ):
                return item, item.start_mark.line + 1
    return None, 0


def _field(node: Node, name: str) -> str | None:
    found, _ = _step(node, name)
    return found.value if isinstance(found, ScalarNode) else None
