"""Status icons as inline SVG drawn in `currentColor`: they render on every machine (no emoji
font needed), take the colour of the status class around them, and are hidden from screen
readers because every icon stands beside the status written out (never colour or shape alone)."""

from __future__ import annotations

from markupsafe import Markup

_RING = '<circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.6"/>'
_SHAPES = {
    "check": _RING + '<path d="M4.8 8.3l2.2 2.2 4.2-4.6" fill="none" stroke="currentColor" stroke-width="1.8"/>',
    "cross": _RING + '<path d="M5.5 5.5l5 5m0-5l-5 5" fill="none" stroke="currentColor" stroke-width="1.8"/>',
    "bar": _RING + '<path d="M4.5 8h7" fill="none" stroke="currentColor" stroke-width="2"/>',
    "slash": _RING + '<path d="M4 12L12 4" fill="none" stroke="currentColor" stroke-width="1.6"/>',
    "half": _RING + '<path d="M8 1.5a6.5 6.5 0 0 1 0 13z" fill="currentColor"/>',
    "clock": _RING + '<path d="M8 4.2V8l2.6 1.6" fill="none" stroke="currentColor" stroke-width="1.6"/>',
    "ring": _RING,
    "pause": _RING + '<path d="M6.3 5v6m3.4-6v6" fill="none" stroke="currentColor" stroke-width="1.8"/>',
    "skip": _RING + '<path d="M5 8h5.5m-2-2.5L11 8l-2.5 2.5" fill="none" stroke="currentColor" stroke-width="1.6"/>',
    "warn": _RING + '<path d="M8 4.3v4.6" stroke="currentColor" stroke-width="1.8"/><circle cx="8" cy="11.2" r="1"'
                    ' fill="currentColor"/>',
    "person": '<circle cx="8" cy="5" r="3" fill="currentColor"/><path d="M2.5 15c0-3.3 2.4-5.5 5.5-5.5s5.5 2.2 5.5 '
              '5.5z" fill="currentColor"/>',
    "dot": '<circle cx="8" cy="8" r="3" fill="currentColor"/>',
}
SHAPE_OF = {"succeeded": "check", "approved": "check", "pass": "check", "failed": "cross", "errored": "warn",
            "error": "warn", "fail": "cross", "rejected": "bar", "canceled": "slash", "abandoned": "slash",
            "inProgress": "half", "running": "half", "evaluating": "half", "queued": "clock", "waiting": "clock",
            "deferred": "clock", "notStarted": "ring", "pending": "pause", "skipped": "skip", "ignored": "skip",
            "partiallySucceeded": "warn", "inconclusive": "ring", "approval": "person"}


def shape(status: object) -> Markup:
    """The icon's SVG elements (for a 16×16 viewBox), to place inside an existing SVG."""
    return Markup(_SHAPES[SHAPE_OF.get(str(status), "dot")])  # noqa: S704 -- constant markup only


def icon(status: object) -> Markup:
    """An inline icon for HTML, 1em square, hidden from assistive technology."""
    return Markup('<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" '  # noqa: S704
                  f'focusable="false">{shape(status)}</svg>')
