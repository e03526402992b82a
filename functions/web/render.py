"""Rendering dashboard pages: one jinja2 environment that escapes everything, and the headers
every page carries (no caching of private pages, no framing, scripts only from the app itself)."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import azure.functions as func

from functions.web import icons

HERE = Path(__file__).parent
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                      "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"}


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _minutes(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} min" if value < 120 else f"{value / 60:.1f} h"


@functools.cache
def environment() -> Any:
    """Built on the first page, not at import: the API's cold start does not pay for jinja2."""
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(icon=icons.icon, shape=icons.shape, when=_when, minutes=_minutes, markdown=_markdown)
    return env


def _markdown(text: str | None) -> Any:
    """A manual intervention's instructions as HTML: CommonMark with raw HTML off and only safe link
    schemes (markdown-it-py's `js-default` preset), so instructions cannot inject markup or scripts."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    return Markup(MarkdownIt("js-default").render(text or ""))  # noqa: S704 -- rendered without raw HTML


def render(template: str, status: int = 200, **context: Any) -> func.HttpResponse:
    text = environment().get_template(template).render(**context)
    return func.HttpResponse(text, status_code=status, mimetype="text/html", charset="utf-8", headers=dict(HEADERS))


def static(name: str) -> func.HttpResponse | None:
    """A file of `static/` (the live-update script and the style sheet), or None."""
    path = HERE / "static" / name
    kinds = {".js": "text/javascript", ".css": "text/css"}
    if path.parent != HERE / "static" or path.suffix not in kinds or not path.is_file():
        return None
    return func.HttpResponse(path.read_bytes(), status_code=200, mimetype=kinds[path.suffix], charset="utf-8",
                             headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})
