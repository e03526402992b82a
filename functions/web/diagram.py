"""Where each stage of a definition is drawn in the pipeline diagram.

Stages go in columns by how far they are from the release: `afterRelease` stages right after
it, `afterStages` stages one column after their latest upstream stage (a fork is one source with
several edges, a join several edges into one box), manual stages after the stage listed before
them, without an edge, because nothing starts them but a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BOX_W, BOX_H, COL_W, ROW_H, PAD = 180, 74, 240, 96, 20


@dataclass
class Node:
    name: str
    column: int
    row: int = 0
    trigger: str = ""
    pre: str | None = None
    post: str | None = None
    gates: str | None = None
    status: str = "notStarted"

    @property
    def x(self) -> int:
        return PAD + self.column * COL_W

    @property
    def y(self) -> int:
        return PAD + self.row * ROW_H


@dataclass
class Edge:
    source: Node
    target: Node
    label: str = ""

    @property
    def path(self) -> str:
        x1, y1 = self.source.x + BOX_W, self.source.y + BOX_H // 2
        x2, y2 = self.target.x, self.target.y + BOX_H // 2
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


@dataclass
class Diagram:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    @property
    def width(self) -> int:
        return 2 * PAD + max((n.column for n in self.nodes), default=0) * COL_W + BOX_W

    @property
    def height(self) -> int:
        return 2 * PAD + max((n.row for n in self.nodes), default=0) * ROW_H + BOX_H


def _approvals(spec: dict[str, Any] | None) -> str | None:
    if not spec:
        return None
    people = spec.get("approvers") or []
    return f"{spec.get('policy', 'anyOne')}: {', '.join(str(p) for p in people)}"


def _trigger(stage: dict[str, Any]) -> str:
    trigger = stage.get("trigger") or {"type": "manual"}
    kind = trigger.get("type", "manual")
    if kind == "afterStages":
        return "after " + " + ".join(trigger.get("stages", []))
    if kind == "afterRelease":
        return "after release"
    if kind == "schedule":
        return "scheduled"
    return "manual"


def layout(definition: dict[str, Any], statuses: Mapping[str, str] | None = None) -> Diagram:
    """The diagram of `definition`, each stage coloured by `statuses` (the latest release's)."""
    statuses = statuses or {}
    source = Node("Release", 0, trigger="artifacts", status="source")
    diagram = Diagram([source])
    by_name: dict[str, Node] = {}
    previous: Node = source
    for stage in definition.get("stages", []):
        trigger = stage.get("trigger") or {"type": "manual"}
        upstream = [by_name[s] for s in trigger.get("stages", []) if s in by_name]
        if trigger.get("type") == "afterStages" and upstream:
            column = 1 + max(n.column for n in upstream)
        elif trigger.get("type") == "afterRelease":
            column, upstream = 1, [source]
        else:
            column, upstream = previous.column + 1, []
        node = Node(stage["name"], column, trigger=_trigger(stage), pre=_approvals(stage.get("preApprovals")),
                    post=_approvals(stage.get("postApprovals")), gates=_gates(stage),
                    status=statuses.get(stage["name"], "notStarted"))
        node.row = sum(1 for n in diagram.nodes if n.column == column)
        diagram.nodes.append(node)
        diagram.edges.extend(Edge(u, node, "pre-approval" if node.pre else "") for u in upstream)
        by_name[stage["name"]] = previous = node
    return diagram


def _gates(stage: dict[str, Any]) -> str | None:
    kinds = [k for k in ("preGates", "postGates") if stage.get(k)]
    return ", ".join(k.removesuffix("Gates") for k in kinds) or None
