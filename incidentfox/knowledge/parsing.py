"""Documents to chunks: Markdown by sections (the heading path kept), HTML through BeautifulSoup
into the same shape, plain text as one section. Long sections are cut into overlapping windows of
words, since the embedder reads at most a few hundred word pieces.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from incidentfox.knowledge.models import Document, InvalidDocument

WINDOW_WORDS = 160
OVERLAP_WORDS = 40
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_TITLE_LINE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}")   # Hugo shortcodes ({{< ref "x.md" >}}): no words in them


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


def _sections(text: str) -> list[tuple[list[str], list[str]]]:
    """(heading path, body lines) per section, in order; fenced code is body, never a heading."""
    out: list[tuple[list[str], list[str]]] = [([], [])]
    path: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            level = len(m.group(1))
            path = [p for p in path if p[0] < level] + [(level, m.group(2).strip())]
            out.append(([h for _, h in path], []))
        else:
            out[-1][1].append(line)
    return out


def _windows(words: list[str]) -> list[str]:
    if len(words) <= WINDOW_WORDS:
        return [" ".join(words)]
    step = WINDOW_WORDS - OVERLAP_WORDS
    return [" ".join(words[i:i + WINDOW_WORDS]) for i in range(0, len(words) - OVERLAP_WORDS, step)]


def chunk_markdown(text: str, title: str = "") -> ParsedDocument:
    fm_title, body = _front_matter(text)
    body = _SHORTCODE.sub("", body)
    sections = _sections(body)
    headings = [p for p, _ in sections if p]
    top = [p[0] for p in headings if len(p) == 1]
    # One top-level heading naming the whole document is its title, not a section.
    drop_top = len(top) == 1 and headings and headings[0] == [top[0]]
    doc_title = title or fm_title or (top[0] if drop_top else "")
    chunks: list[Chunk] = []
    for path, lines in sections:
        shown = path[1:] if drop_top and path and path[0] == top[0] else path
        words = "\n".join(lines).split()
        if not words:
            continue
        for piece in _windows(words):
            chunks.append(Chunk(section=" > ".join(shown), text=piece, ordinal=len(chunks)))
    return ParsedDocument(title=doc_title, chunks=chunks)


def html_to_markdown(html: str) -> str:
    """HTML as Markdown-ish text: headings become ``#`` lines, scripts and styles are dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n")
    text = soup.get_text("\n")
    return (f"---\ntitle: {title}\n---\n" if title else "") + text


def parse_document(doc: Document) -> ParsedDocument:
    """The document's chunks; :class:`InvalidDocument` when it holds no words."""
    if doc.media_type == "text/html":
        parsed = chunk_markdown(html_to_markdown(doc.text), doc.title)
    elif doc.media_type == "text/markdown":
        parsed = chunk_markdown(doc.text, doc.title)
    else:
        words = doc.text.split()
        parsed = ParsedDocument(title=doc.title, chunks=[Chunk("", w, i) for i, w in enumerate(_windows(words))]
                                if words else [])
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
