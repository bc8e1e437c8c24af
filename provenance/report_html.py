"""HTML view of a report (placeholder until the full view lands)."""
from __future__ import annotations

import html

from .report import Report, render_text


def render_html(report: Report) -> str:
    return f"<!doctype html><meta charset=utf-8><pre>{html.escape(render_text(report))}</pre>\n"
