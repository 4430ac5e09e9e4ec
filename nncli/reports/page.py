"""The report as one self-contained HTML page: every picture a PNG inside the page (a ``data:``
URI), the styles in the page, no script, so it opens the same anywhere and asks no server for
anything. Each section (``Section``) shows one thing of every run, the runs side by side."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 0.4em 0; }
.runs { display: grid; gap: 1.5em; }
.run { min-width: 0; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; height: auto; }
.note { color: #666; font-size: 0.85em; }
"""


@dataclass
class Section:
    """``title`` with an ``id`` (the page's anchor) and one HTML fragment per run, in the runs'
    order (a run with nothing to show gets a note)."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)
    intro: str = ""


def text(value: object) -> str:
    return html.escape(str(value), quote=True)


def note(words: str) -> str:
    return f'<p class="note">{text(words)}</p>'


def image(png: bytes, alt: str) -> str:
    """A PNG inside the page."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{text(alt)}" src="data:image/png;base64,{data}">'


def table(
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    shades: Sequence[Sequence[float]] = (),
) -> str:
    """A table of ``header`` and ``rows`` (cells escaped; a float shown to 4 significant digits,
    its exact value kept in ``data-value``); ``shades``: a 0..1 blue behind each body cell (the
    confusion matrix). An empty ``header``: no header row (a browser draws an empty one as a
    thin blank bar above the table)."""
    head = "".join(f"<th>{text(cell)}</th>" for cell in header)
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            shade = shades[i][j - 1] if shades and j > 0 else None
            style = "" if shade is None else f' style="background: {blue(shade)}"'
            if isinstance(cell, float):
                style += f' data-value="{cell!r}"'
                cell = number(cell)
            cells.append(f"<td{style}>{text(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def blue(level: float) -> str:
    """White (0) to a mid blue (1)."""
    level = min(max(float(level), 0.0), 1.0)
    red, green = round(255 - 160 * level), round(255 - 110 * level)
    return f"rgb({red}, {green}, 255)"


def number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def page(title: str, runs: Sequence[str], sections: Sequence[Section], footer: str = "") -> str:
    """The whole page: the title, a table of contents, then each section with its runs' parts
    in columns (``runs`` names them; a section of one part for several runs, the comparison,
    spans the page under no run's name)."""
    contents = "".join(f'<li><a href="#{s.id}">{text(s.title)}</a></li>' for s in sections)
    body = [f"<h1>{text(title)}</h1>", f"<nav><ol>{contents}</ol></nav>"]
    for section in sections:
        body.append(f'<section id="{section.id}"><h2>{text(section.title)}</h2>{section.intro}')
        columns = len(section.parts)
        grid = f"grid-template-columns: repeat({columns}, minmax(0, 1fr))"
        body.append(f'<div class="runs" style="{grid}">')
        for name, part in zip(runs, section.parts, strict=False):
            heading = f"<h3>{text(name)}</h3>" if columns > 1 else ""
            body.append(f'<div class="run">{heading}{part}</div>')
        body.append("</div></section>")
    if footer:
        body.append(f"<footer>{note(footer)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
