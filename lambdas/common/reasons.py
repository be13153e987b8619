"""A failure reason as the record keeps it: readable text of bounded length.

SageMaker copies the container's error answer into an async failure notification's
``failureReason``, whole; a model may answer with an HTML error page (the scikit-learn image's
500 is one) or with 100 KB of text. The record, and the event the pipes publish from it, keep a
readable reason of at most ``FAILURE_REASON_MAX_CHARS`` characters: an HTML page becomes its
text (tags dropped, the title and headings kept, whitespace collapsed), and a long reason keeps
its head and tail around a marker. The whole answer stays where SageMaker put it: the failure
object (the record's ``failure_location``, with the model's own body) and the endpoint's log
(CloudWatch Logs ``/aws/sagemaker/Endpoints/<endpoint name>``) - docs/operations.md.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

FAILURE_REASON_MAX_CHARS = 2048
CUT_MARKER = " [...{cut} characters cut: the whole reason is in the failure object...] "
_HTML = re.compile(r"<!DOCTYPE\s+html|<(html|head|body|title|h1)[\s>]", re.IGNORECASE)
_BLOCKS = frozenset(
    {"title", "h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "li", "pre", "br", "tr", "body"}
)
_HIDDEN = frozenset({"script", "style"})
_WHITESPACE = re.compile(r"\s+")
_OPENING = "\"'(["
_CLOSING = "\"'.,;:)]"


class _TextOfHtml(HTMLParser):
    """Text of the HTML parts of a reason: each block (title, heading, paragraph...) one
    segment; script and style left out; character references decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[str] = []
        self._current: list[str] = []
        self._hidden = 0

    def _end_segment(self) -> None:
        text = _WHITESPACE.sub(" ", "".join(self._current)).strip()
        if text:
            self.segments.append(text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self._end_segment()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self._end_segment()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._current.append(data)

    def text(self) -> str:
        """The segments, " - " between two blocks; none next to a quote or punctuation (the
        text around the page: ``with message "<page>". See ...``)."""
        self._end_segment()
        joined = ""
        for segment in self.segments:
            glued = not joined or joined[-1] in _OPENING or segment[0] in _CLOSING
            joined += segment if glued else f" - {segment}"
        return joined


def html_as_text(reason: str) -> str:
    """The reason with its HTML rendered as text (unchanged when it holds no HTML page)."""
    if not _HTML.search(reason):
        return reason
    parser = _TextOfHtml()
    parser.feed(reason)
    parser.close()
    return parser.text()


def bounded(reason: str, max_chars: int = FAILURE_REASON_MAX_CHARS) -> str:
    """At most ``max_chars`` characters: the head and the tail, and a marker saying how much
    was cut between them."""
    if len(reason) <= max_chars:
        return reason
    marker = CUT_MARKER.format(cut=len(reason))  # an upper bound of the digits needed
    keep = max_chars - len(marker)
    head = keep * 2 // 3
    tail = keep - head
    marker = CUT_MARKER.format(cut=len(reason) - head - tail)
    return reason[:head] + marker + reason[len(reason) - tail :]


def readable_reason(reason: str) -> str:
    """The failure reason the record keeps (see the module doc)."""
    return bounded(_WHITESPACE.sub(" ", html_as_text(reason)).strip())
