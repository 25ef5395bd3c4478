"""Documents to chunks: Markdown by sections (the heading path kept), HTML (:mod:`html_text`) into
the same shape, plain text as one section. Long sections are cut into overlapping windows of words,
since the embedder reads at most a few hundred word pieces.

Every step is linear in the document's size (no pattern here backtracks over a long run of spaces,
hashes or unclosed shortcodes), and a document has at most :data:`MAX_SECTIONS` sections, so a
document of the largest size (``MAX_DOCUMENT_BYTES``) parses in well under a second whatever it holds.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from incidentfox.knowledge.html_text import MAX_HTML_TAGS, html_to_markdown
from incidentfox.knowledge.models import Document, InvalidDocument

__all__ = ["MAX_HTML_TAGS", "MAX_SECTIONS", "OVERLAP_WORDS", "WINDOW_WORDS", "Chunk", "ParsedDocument",
           "chunk_markdown", "html_to_markdown", "media_type_for", "parse_document"]

WINDOW_WORDS = 160
OVERLAP_WORDS = 40
MAX_SECTIONS = 10_000       # headings of one document; each is a chunk to embed at every rebuild
# A line opening a fence, or one that is a heading (1 to 6 hashes, then a space), in text whose line
# ends are all "\n" (the others str.splitlines knows are turned into one first).
_MARK = re.compile(r"^(?:(?P<fence>[^\S\n]*(?:```|~~~))|#{1,6}[^\S\n])", re.MULTILINE)
_LINE_BREAK = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
# What ``^title:\s*(.+?)\s*$`` matched, without its lazy group retrying every end inside a long run of
# spaces (quadratic): the line's words up to its last non-space, else (spaces to the end) the same.
_TITLE_LINE = re.compile(r"^title:\s*((?:[^\S\n]*\S)+|.+?)\s*$", re.MULTILINE)
_SHORTCODE_OPEN = re.compile(r"\{\{[<%]")     # Hugo shortcodes ({{< ref "x.md" >}}): no words in them
_SHORTCODE_CLOSE = re.compile(r"[>%]\}\}")


@dataclass(frozen=True)
class Chunk:
    section: str        # heading path below the document title, " > "-joined; "" before any heading
    text: str           # the words shown to a reader
    ordinal: int        # position in the document


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    chunks: list[Chunk]


def _front_matter(text: str) -> tuple[str, str]:
    """(title from the YAML front matter or "", the text without it)."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return "", text
    t = _TITLE_LINE.search(m.group(1))
    return (t.group(1).strip("'\"") if t else ""), text[m.end():]


def _strip_shortcodes(text: str) -> str:
    """``re.sub(r"\\{\\{[<%].*?[>%]\\}\\}", "", text)`` in one pass per line: that pattern retried every
    unclosed ``{{<`` up to the line's end (quadratic on a line of them); once one has no close on its
    line, no later one on that line has either."""
    if "{{" not in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "{{" not in line:
            continue
        kept, pos = [], 0
        while (start := _SHORTCODE_OPEN.search(line, pos)) is not None:
            end = _SHORTCODE_CLOSE.search(line, start.end())
            if end is None:
                break
            kept.append(line[pos:start.start()])
            pos = end.end()
        lines[i] = "".join(kept) + line[pos:]
    return "\n".join(lines)


def _heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading line, as ``^(#{1,6})\\s+(.*?)\\s*#*\\s*$`` read it (its closing
    hashes dropped), without that pattern's backtracking: cubic in a run of spaces inside the line."""
    rest = line.lstrip("#")
    level = len(line) - len(rest)
    if not 1 <= level <= 6 or not rest[:1].isspace():
        return None
    return level, rest.rstrip().rstrip("#").strip()


def _sections(text: str) -> list[tuple[list[str], list[str]]]:
    """(heading path, body text pieces) per section, in order; fenced code is body, never a heading.
    :class:`InvalidDocument` past :data:`MAX_SECTIONS` headings.

    Lines are ``str.splitlines``' lines; only those that open a heading or a fence are looked at (a
    Python step per line cost a second on 2 MB of short lines), the body between them is sliced."""
    text = _LINE_BREAK.sub("\n", text)
    out: list[tuple[list[str], list[str]]] = [([], [])]
    path: list[tuple[int, str]] = []
    fenced = False
    body_from = 0
    for m in _MARK.finditer(text):
        if m.lastgroup == "fence":
            fenced = not fenced
            continue
        if fenced:
            continue
        end = text.find("\n", m.start())
        end = len(text) if end < 0 else end
        heading = _heading(text[m.start():end])
        if heading is None:     # not reached: the pattern checked the hashes and the space
            continue
        if len(out) > MAX_SECTIONS:
            raise InvalidDocument(f"has more than {MAX_SECTIONS} sections (headings)",
                                  details={"max_sections": MAX_SECTIONS})
        out[-1][1].append(text[body_from:m.start()])
        body_from = end
        level, name = heading
        path = [p for p in path if p[0] < level] + [(level, name)]
        out.append(([h for _, h in path], []))
    out[-1][1].append(text[body_from:])
    return out


def _windows(words: list[str]) -> list[str]:
    if len(words) <= WINDOW_WORDS:
        return [" ".join(words)]
    step = WINDOW_WORDS - OVERLAP_WORDS
    return [" ".join(words[i:i + WINDOW_WORDS]) for i in range(0, len(words) - OVERLAP_WORDS, step)]


def chunk_markdown(text: str, title: str = "") -> ParsedDocument:
    fm_title, body = _front_matter(text)
    body = _strip_shortcodes(body)
    sections = _sections(body)
    headings = [p for p, _ in sections if p]
    top = [p[0] for p in headings if len(p) == 1]
    # One top-level heading naming the whole document is its title, not a section.
    drop_top = len(top) == 1 and headings and headings[0] == [top[0]]
    doc_title = title or fm_title or (top[0] if drop_top else "")
    chunks: list[Chunk] = []
    for path, body in sections:
        shown = path[1:] if drop_top and path and path[0] == top[0] else path
        words = "\n".join(body).split()
        if not words:
            continue
        for piece in _windows(words):
            chunks.append(Chunk(section=" > ".join(shown), text=piece, ordinal=len(chunks)))
    return ParsedDocument(title=doc_title, chunks=chunks)


def _parse(doc: Document) -> ParsedDocument:
    if doc.media_type == "text/html":
        return chunk_markdown(html_to_markdown(doc.text, max_headings=MAX_SECTIONS), doc.title)
    if doc.media_type == "text/markdown":
        return chunk_markdown(doc.text, doc.title)
    words = doc.text.split()
    return ParsedDocument(title=doc.title, chunks=[Chunk("", w, i) for i, w in enumerate(_windows(words))]
                          if words else [])


def parse_document(doc: Document) -> ParsedDocument:
    """The document's chunks; :class:`InvalidDocument` (naming the document, and the limit in its
    details) when it holds no words, more than :data:`MAX_SECTIONS` sections or, in HTML, more than
    :data:`MAX_HTML_TAGS` tags."""
    try:
        parsed = _parse(doc)
    except InvalidDocument as exc:
        raise InvalidDocument(f"document {doc.source!r} {exc.message}",
                              details={"source": doc.source, **exc.details}) from None
    if not parsed.chunks:
        raise InvalidDocument(f"document {doc.source!r} has no text", details={"source": doc.source})
    return parsed


def media_type_for(name: str) -> str | None:
    """The media type of a file name the ingester reads, or None for files it skips."""
    lower = name.lower()
    if lower.endswith((".md", ".markdown")):
        return "text/markdown"
    if lower.endswith((".html", ".htm")):
        return "text/html"
    if lower.endswith(".txt"):
        return "text/plain"
    return None
