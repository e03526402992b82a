"""Where each stage of a definition is drawn in the pipeline diagram.

The layout follows the trigger graph, whatever order the definition lists its stages in (a clone
of Production renamed QA comes after Production in the list, before it in the pipeline): a
stage's column is its depth in that graph (`shared/domain/stage_order.depths`), one column right
of the release box for stages that wait for no other stage (after release, manual, scheduled).
Edges: from the release box to `afterRelease` stages, from each upstream stage to an
`afterStages` stage (a fork is one source with several edges, a join several edges into one box),
and dashed from the stages a manual or scheduled stage requires. A manual stage without
requirements has no edge: nothing starts it but a person. Within a column, stages go top to
bottom in pipeline order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.stage_order import depths, pipeline_order, upstream

BOX_W, BOX_H, COL_W, ROW_H, PAD = 184, 84, 264, 104, 20
GAP = COL_W - BOX_W
"""Room between two columns: an edge's "approval" label fits in it (it is never under a box)."""


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
    kind: str = "trigger"
    """"trigger": the source's success starts the target; "requires": the target (manual or
    scheduled) only deploys releases that passed the source."""

    @property
    def path(self) -> str:
        """Between neighbouring columns, one curve through the gap; an edge that skips columns runs in
        the gutter above the rows it passes, so it never crosses a box."""
        x1, y1 = self.source.x + BOX_W, self.source.y + BOX_H // 2
        x2, y2 = self.target.x, self.target.y + BOX_H // 2
        if x2 - x1 <= GAP:
            mid = (x1 + x2) // 2
            return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
        a, b = x1 + GAP // 2, x2 - GAP // 2
        gutter = min(self.source.y, self.target.y) - (ROW_H - BOX_H) // 2
        return (f"M{x1},{y1} C{a},{y1} {a},{gutter} {a + 12},{gutter} L{b - 12},{gutter} "
                f"C{b},{gutter} {b},{y2} {x2},{y2}")


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

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes[1:] if n.name == name), None)


def _approvals(spec: dict[str, Any] | None) -> str | None:
    if not spec:
        return None
    people = spec.get("approvers") or []
    return f"{spec.get('policy', 'anyOne')}: {', '.join(str(p) for p in people)}"


def _trigger(stage: Mapping[str, Any]) -> str:
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
    stages: list[dict[str, Any]] = list(definition.get("stages", []))
    by_name = {s["name"]: s for s in stages}
    depth = depths(stages)
    source = Node("Release", 0, trigger="artifacts", status="source")
    diagram = Diagram([source])
    rows: dict[int, int] = {}
    for name in pipeline_order(stages):
        stage = by_name[name]
        column = depth[name] + 1
        node = Node(name, column, row=rows.get(column, 0), trigger=_trigger(stage),
                    pre=_approvals(stage.get("preApprovals")), post=_approvals(stage.get("postApprovals")),
                    gates=_gates(stage), status=statuses.get(name, "notStarted"))
        rows[column] = node.row + 1
        diagram.nodes.append(node)
    for node in diagram.nodes[1:]:
        stage = by_name[node.name]
        kind = (stage.get("trigger") or {}).get("type", "manual")
        ups = [n for u in upstream(stage, by_name) if (n := diagram.node(u)) is not None]
        label = "approval" if node.pre else ""
        if kind == "afterRelease":
            diagram.edges.append(Edge(source, node, label))
        elif kind == "afterStages":
            diagram.edges.extend(Edge(u, node, label) for u in ups)
        else:
            diagram.edges.extend(Edge(u, node, label, kind="requires") for u in ups)
    return diagram


def _gates(stage: Mapping[str, Any]) -> str | None:
    kinds = [k for k in ("preGates", "postGates") if stage.get(k)]
    return ", ".join(k.removesuffix("Gates") for k in kinds) or None
