"""The holds of a deployment, in the order it meets them. Read top to bottom: this is the order.

Before the steps: a pre-deployment gate set to run before the approvals, the pre-deployment approval,
the stage's windows and freezes, a deferral, a pre-deployment gate (after the approvals, its
default place), then the steps themselves. After the steps: a post-deployment gate (before the
approvals, its default place), the post-deployment approval, a post-deployment gate set to run
after the approvals. A hold a stage does not configure passes at once.
"""

from __future__ import annotations

from shared.domain.transitions import approvals, gates, steps, windows
from shared.domain.transitions.flow import Hold
from shared.domain.transitions.gates import AFTER_APPROVALS, BEFORE_APPROVALS
from shared.domain.vocabulary import Kind, Phase

HOLDS: tuple[Hold, ...] = (
    Hold("pre-deployment gate (before approvals)", Kind.PRE, Phase.PRE_GATE, gates.hold(Kind.PRE, BEFORE_APPROVALS)),
    Hold("pre-deployment approval", Kind.PRE, Phase.PRE_APPROVAL, approvals.pre_approval),
    Hold("deployment windows and freezes", Kind.PRE, Phase.WINDOW, windows.window),
    Hold("deferral", Kind.PRE, Phase.DEFERRED, windows.deferral),
    Hold("pre-deployment gate", Kind.PRE, Phase.PRE_GATE, gates.hold(Kind.PRE, AFTER_APPROVALS)),
    Hold("steps", Kind.PRE, Phase.STEPS, steps.run_steps),
    Hold("post-deployment gate", Kind.POST, Phase.POST_GATE, gates.hold(Kind.POST, BEFORE_APPROVALS)),
    Hold("post-deployment approval", Kind.POST, Phase.POST_APPROVAL, approvals.post_approval),
    Hold("post-deployment gate (after approvals)", Kind.POST, Phase.POST_GATE, gates.hold(Kind.POST, AFTER_APPROVALS)),
)
