"""HTML to Markdown-ish text in one linear pass: headings become ``#`` lines, the first ``<title>``
becomes front matter, scripts, styles, ``<noscript>`` and ``<template>`` are dropped.

The text is what BeautifulSoup's ``html.parser`` tree gave with its headings replaced by ``#`` lines
(this module's predecessor): its strings joined by newlines, whitespace-only strings collapsed to one
space or newline (except inside ``<pre>``/``<textarea>``), ruby annotations (``<rt>``, ``<rp>``),
comments and declarations left out, CDATA kept, an end tag closing every element opened after its
element and nothing when none is open, void elements (``<br>``) closed at once. A heading's line holds
its words joined by spaces; a heading inside a heading of a higher level (``<h2>…<h1>x</h1></h2>``)
reads ``# x`` inside the outer line, one inside a heading of its own level or a lower one is plain text.

Two things differ, both only on malformed markup: tags are read like an HTML5 tokenizer (a ``<``
that opens a tag starts it even when no ``>`` follows: the tag runs to the end, unread) where
``html.parser`` backtracked and re-read the text after every unclosed ``<a`` (quadratic: 48 KB of
``<a `` took 52 s), and entities are decoded as ``html.unescape`` does (an unknown ``&x;`` keeps its
``;``). Work is linear in the text and bounded by :data:`MAX_HTML_TAGS`.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from html import unescape

from incidentfox.knowledge.models import InvalidDocument

MAX_HTML_TAGS = 100_000     # tags, comments and declarations of one document (20 bytes each at 2 MB)

# One token per match; every alternative always matches what it starts, so nothing is read twice.
_TOKEN = re.compile(r"""
    (?P<text>(?:[^<]+|<(?![a-zA-Z!/?]))+)                     # a "<" opening nothing is text
  | (?P<comment><!--.*?(?:--\s*>|\Z))
  | (?P<cdata><!\[(?i:cdata)\[(.*?)(?:\]\s*\]\s*>|\Z))
  | (?P<decl><[!?][^>]*>?)                              # doctype, declarations, processing instructions
  | (?P<end></\s*([a-zA-Z][^\t\n\r\f />\x00]*)[^>]*(>?))
  | (?P<bogus></[^>]*>?)
  | (?P<start><([a-zA-Z][^\t\n\r\f />\x00]*)
        (?:[^>=/]+|=\s*"[^"]*"?|=\s*'[^']*'?|=\s*[^\s>"'][^\s>]*|/(?!>)|=)*   # attributes, unread
        (/?)(>?))
""", re.VERBOSE | re.DOTALL)
_RAW_TEXT = {"script": re.compile(r"</\s*script\s*>", re.IGNORECASE),
             "style": re.compile(r"</\s*style\s*>", re.IGNORECASE)}
_DROPPED = frozenset({"script", "style", "noscript", "template"})
_HIDDEN = frozenset({"rt", "rp"})                       # ruby annotations: not the page's words
_PRESERVE = frozenset({"pre", "textarea"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem",
                   "meta", "param", "source", "track", "wbr", "basefont", "bgsound", "command", "frame",
                   "image", "isindex", "nextid", "spacer"})
_LEVEL = {f"h{n}": n for n in range(1, 7)}
_SPECIAL = _DROPPED | _HIDDEN | _PRESERVE | frozenset(_LEVEL) | {"title"}
_ASCII_SPACES = " \n\t\f\r"
# what an open element undoes when it is closed
_DROP, _PRE, _HIDE, _TITLE, _HEADING, _FRAME = 1, 2, 4, 8, 16, 32


class _Reader:
    def __init__(self, max_headings: int | None) -> None:
        self.max_headings = max_headings
        self.headings = 0                       # heading lines written
        self.out: list[str] = []
        self.pending: list[str] = []            # text since the last tag, one string once flushed
        self.stack: list[tuple[str, int, int]] = []  # (name, what closing it undoes, heading level above it)
        self.open: dict[str, int] = {}
        self.closed_void: dict[str, int] = {}   # "<br>" closed at once: its "</br>" is skipped, once
        self.dropped = self.preserve = self.hidden = 0
        self.title: list[str] | None = None     # the first <title>'s words while it is open
        self.title_text: str | None = None
        self.frames: list[list[str]] = []       # words of the open headings that get a line of their own
        self.levels: list[int] = []             # their levels
        self.above = 7                          # the lowest level of the open headings (7: none)

    def flush(self, cdata: bool = False) -> None:
        if not self.pending:
            return
        s = "".join(self.pending)
        self.pending.clear()
        if not self.preserve and not s.strip(_ASCII_SPACES):
            s = "\n" if "\n" in s else " "
        if self.dropped or (self.hidden and not cdata):
            return
        if self.title is not None or self.frames:
            words = s.strip()
            if words:
                (self.title if self.title is not None else self.frames[-1]).append(words)
            return
        self.out.append(s)

    def push(self, name: str) -> None:
        self.open[name] = self.open.get(name, 0) + 1
        above = self.above
        if self.dropped or name in _DROPPED:
            self.dropped += 1
            undo = _DROP
        else:
            undo = self._enter(name) if name in _SPECIAL else 0
        self.stack.append((name, undo, above))

    def _enter(self, name: str) -> int:
        """What opening a special element starts; returns what closing it undoes."""
        undo = 0
        if name in _PRESERVE:
            undo |= _PRE
            self.preserve += 1
        if name in _HIDDEN:
            undo |= _HIDE
            self.hidden += 1
        if name == "title" and self.title_text is None and self.title is None:
            undo |= _TITLE
            self.title = []
        elif name in _LEVEL and self.title is None:
            level = _LEVEL[name]
            undo |= _HEADING
            if level < self.above:      # no open heading of its level or lower: a line of its own
                if not self.frames:
                    self._count_heading()
                undo |= _FRAME
                self.frames.append([])
                self.levels.append(level)
            self.above = min(self.above, level)
        return undo

    def _count_heading(self) -> None:
        self.headings += 1
        if self.max_headings is not None and self.headings > self.max_headings:
            raise InvalidDocument(f"has more than {self.max_headings} sections (headings)",
                                  details={"max_sections": self.max_headings})

    def pop(self) -> None:
        name, undo, above = self.stack.pop()
        self.open[name] -= 1
        if not undo:
            return
        if undo & _DROP:
            self.dropped -= 1
            return
        if undo & _PRE:
            self.preserve -= 1
        if undo & _HIDE:
            self.hidden -= 1
        if undo & _TITLE:
            self.title_text = " ".join(self.title or [])
            self.title = None
        if undo & _HEADING:
            self.above = above
        if undo & _FRAME:
            line = f"{'#' * self.levels.pop()} {' '.join(self.frames.pop())}"
            if self.frames:
                self.frames[-1].append(line.strip())
            else:
                self.out.append(f"\n\n{line}\n\n")

    def close(self, name: str) -> None:
        """An end tag: close the most recent open element of that name and everything opened after it."""
        if self.open.get(name):
            while self.stack[-1][0] != name:
                self.pop()
            self.pop()


def html_to_markdown(html: str, *, max_headings: int | None = None) -> str:
    """HTML as Markdown-ish text (the module docstring); :class:`InvalidDocument` past
    :data:`MAX_HTML_TAGS` tags or ``max_headings`` heading lines."""
    r = _Reader(max_headings)
    pos, n, tags = 0, len(html), 0
    while pos < n:
        m = _TOKEN.match(html, pos)
        assert m is not None        # every position starts a token
        pos, kind, at = m.end(), m.lastgroup, m.lastindex or 0     # at: the token's group, its parts after it
        if kind == "text":
            text = m.group()
            r.pending.append(unescape(text) if "&" in text else text)
            continue
        tags += 1
        if tags > MAX_HTML_TAGS:
            raise InvalidDocument(f"has more than {MAX_HTML_TAGS} HTML tags",
                                  details={"max_html_tags": MAX_HTML_TAGS})
        if kind == "start":
            name, selfclose, gt = m.group(at + 1, at + 2, at + 3)
            if not gt:
                break                       # the document ends inside the tag
            name = name.lower()
            if r.pending:
                r.flush()
            r.push(name)
            if selfclose:
                r.close(name)
            elif name in _VOID:
                r.close(name)
                r.closed_void[name] = r.closed_void.get(name, 0) + 1
            elif name in _RAW_TEXT:         # raw text up to its end tag (dropped with its element)
                end = _RAW_TEXT[name].search(html, pos)
                if end is None:
                    break
                pos = end.end()
                r.close(name)
        elif kind == "end":
            name, gt = m.group(at + 1, at + 2)
            if not gt:
                break
            name = name.lower()
            if r.closed_void.get(name):
                r.closed_void[name] -= 1
            else:
                if r.pending:
                    r.flush()
                r.close(name)
        elif kind == "cdata":
            r.flush()
            r.pending.append(m.group(at + 1))
            r.flush(cdata=True)
        else:                               # comments, declarations: they end a string, and say nothing
            r.flush()
    r.flush()
    while r.stack:
        r.pop()
    title = r.title_text or ""
    return (f"---\ntitle: {title}\n---\n" if title else "") + "\n".join(r.out)
