"""HTML mail bodies as plain text an agent can read safely.

The text keeps what a reader sees: paragraphs and line breaks, list items,
table cells, link targets next to their words, image alternatives.  Nothing
active survives: scripts, styles, forms and comments are dropped, and the
result is text only, so showing it cannot run anything.  The standard
library's :class:`html.parser.HTMLParser` is lenient (unclosed tags,
stray ``<``), and :func:`html_to_text` never raises.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

log = logging.getLogger(__name__)

_SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "math", "object", "iframe"})
_BLOCK = frozenset({
    "p", "div", "section", "article", "header", "footer", "aside", "nav", "main", "address", "blockquote",
    "center", "dl", "dt", "dd", "fieldset", "figure", "figcaption", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "ol", "ul", "table", "thead", "tbody", "tfoot", "tr", "pre", "hr",
})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._links: list[str | None] = []
        self._link_text: list[list[str]] = []

    # -- helpers
    def _newline(self, count: int = 1) -> None:
        self.out.append("\n" * count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += 1
            return
        if self._skip_depth:
            return
        attributes = {name: value or "" for name, value in attrs}
        if tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "hr":
            self._newline()
            self.out.append("----")
            self._newline()
        elif tag == "img":
            alt = attributes.get("alt", "").strip()
            if alt:
                self.out.append(f"[{alt}]")
        elif tag == "a":
            href = attributes.get("href", "").strip()
            self._links.append(href if href.lower().startswith(_LINK_SCHEMES) else None)
            self._link_text.append([])
        if tag in _BLOCK:
            self._newline(2 if tag in ("p", "blockquote", "table", "pre") or tag.startswith("h") else 1)
        if tag == "pre":
            self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            return  # <script/>: nothing to skip
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag == "a" and self._links:
            href = self._links.pop()
            words = "".join(self._link_text.pop()).strip()
            if href and href.removeprefix("mailto:") != words and href != words:
                self.out.append(f" <{href}>")
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag in _BLOCK:
            self._newline(2 if tag in ("p", "blockquote", "table", "pre") or tag.startswith("h") else 1)

    def _line_start(self) -> bool:
        for chunk in reversed(self.out):
            if chunk:
                return chunk.endswith("\n")
        return True

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if not self._pre_depth:
            data = _SPACES.sub(" ", data.replace("\n", " ").replace("\r", " "))
            if self._line_start():
                data = data.lstrip(" ")
        if self._link_text:
            self._link_text[-1].append(data)
        self.out.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML document or fragment (see the module documentation)."""
    parser = _TextParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; a failure here must not lose the mail
        log.warning("HTML body could not be fully converted; keeping the text read so far", exc_info=True)
    text = "".join(parser.out)
    lines = [line.rstrip(" ") for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
