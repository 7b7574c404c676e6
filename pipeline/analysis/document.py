"""Markdown fragments put together as one report: ``report.md`` and a self-contained ``report.html``.

Each stage that reports writes its own fragment (compare the shampoo study's, each of the other studies its
section, PNGs beside it); ``section`` fits a fragment into a report elsewhere (headings shifted, image links made
relative to the report) and ``to_html`` renders the markdown with markdown-it, every local image embedded as
base64, so the page opens anywhere on its own. Light on purpose: the report stage imports nothing heavier.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
from pathlib import Path

from markdown_it import MarkdownIt

from pipeline import io
from pipeline.analysis.decision import VERDICTS

_MD = MarkdownIt("commonmark", {"html": True}).enable("table")


def _is_local(src: str) -> bool:
    """A relative link to a file (not a URL, a data URI or an absolute path)."""
    return not (os.path.isabs(src) or "://" in src or src.startswith("data:"))


def section(fragment: Path, report_dir: Path, level: int | None = 2) -> str:
    """``fragment`` as part of a report in ``report_dir``: image links made relative to the report and, unless
    ``level`` is None, headings shifted so that its top one is at ``level`` (one made from its file name if it
    has none)."""
    text = fragment.read_text(encoding="utf-8")
    tokens = _MD.parse(text)
    lines = text.splitlines()
    atx = [t for t in tokens if t.type == "heading_open" and t.markup.startswith("#")]
    if level is not None and atx:
        shift = level - min(len(t.markup) for t in atx)
        for t in atx:
            line = lines[t.map[0]]
            own = len(t.markup)
            lines[t.map[0]] = "#" * min(6, own + shift) + line.lstrip()[own:]
    elif level is not None:
        lines = [f"{'#' * level} {fragment.stem.replace('_', ' ').capitalize()}", "", *lines]
    text = "\n".join(lines)
    for src in {c.attrs["src"] for t in tokens for c in (t.children or []) if c.type == "image"}:
        if _is_local(src):
            target = os.path.relpath(fragment.parent / src, report_dir)
            text = text.replace(f"]({src}", f"]({Path(target).as_posix()}")
    return text.rstrip() + "\n"


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; }
main { max-width: 1320px; margin: 0 auto; padding: 1rem 2rem 4rem; background: white; }
h1 { font-size: 1.7rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; display: block; overflow-x: auto; font-size: 13px; margin: .8rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fbfbfb; }
td.supported { background: #dff3e3 !important; font-weight: 600; }
td.contradicted { background: #f9dddd !important; font-weight: 600; }
td.inconclusive { background: #f1f1f1 !important; font-weight: 600; }
td.equivalent { background: #e3ecf9 !important; font-weight: 600; }
td.not-run { color: #777; font-style: italic; }
td { max-width: 36rem; }
img { max-width: 100%; height: auto; } code { font-size: 90%; }
pre { background: #f5f5f5; padding: .8rem; overflow-x: auto; font-size: 12px; }
details { margin: 1rem 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _data_uri(image: Path) -> str:
    if not image.is_file():
        raise FileNotFoundError(f"the report links {image}, which does not exist: rerun the stage that draws it.")
    kind = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(image.read_bytes()).decode('ascii')}"


def to_html(text: str, base: Path) -> str:
    """Render the report's markdown, embedding each local image as base64 and marking verdict cells."""
    tokens = _MD.parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open":  # GitHub's anchors, so the report's #links work in the HTML too
            slug = re.sub(r"[^\w\- ]", "", tokens[i + 1].content.lower()).strip().replace(" ", "-")
            token.attrSet("id", slug)
        if token.type == "td_open" and tokens[i + 1].content in VERDICTS:
            token.attrSet("class", tokens[i + 1].content.replace(" ", "-"))
        for child in token.children or []:
            if child.type == "image" and _is_local(child.attrs["src"]):
                child.attrSet("src", _data_uri(base / child.attrs["src"]))
    body = _MD.renderer.render(tokens, _MD.options, {})
    title = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.tag == "h1"), "Report")
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def write(text: str, report_md: Path, report_html: Path) -> None:
    """Write both or neither: the markdown and its HTML rendering (images embedded)."""
    io.write_together({report_md: text, report_html: to_html(text, report_md.parent)})
