"""Parsing is linear and bounded: documents of the largest size built to hit every super-linear path
the parser had (per-heading tree surgery, regex backtracking over runs of spaces, html.parser re-reading
unclosed tags) parse, or are refused with 400 ``invalid_document`` naming the limit, and the one-pass
readers give what the patterns and the BeautifulSoup tree they replace gave.

Nothing here is timed (the suite's per-test timeout is the bound: before, the 2 MB cases took from
minutes to days); what is asserted is the result."""

from __future__ import annotations

import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kb_fakes import HashEmbedder

from incidentfox.knowledge import Document, InvalidDocument, KnowledgeBase, Scope
from incidentfox.knowledge.models import MAX_DOCUMENT_BYTES
from incidentfox.knowledge.parsing import (
    _TITLE_LINE,
    MAX_HTML_TAGS,
    MAX_SECTIONS,
    WINDOW_WORDS,
    _heading,
    _strip_shortcodes,
    chunk_markdown,
    html_to_markdown,
    parse_document,
)
from incidentfox.object_store import LocalObjectStore

ACME = Scope(org="acme")
N = MAX_DOCUMENT_BYTES


def doc(text: str, media_type: str = "text/markdown") -> Document:
    assert len(text.encode()) <= MAX_DOCUMENT_BYTES
    return Document(scope=ACME, source="big", media_type=media_type, text=text)


def refused(d: Document) -> InvalidDocument:
    with pytest.raises(InvalidDocument) as exc:
        parse_document(d)
    assert exc.value.status == 400 and exc.value.code == "invalid_document"
    assert exc.value.details["source"] == "big"
    return exc.value


@pytest.mark.parametrize("text,media_type", [
    ("# a\nb\n" * (N // 6), "text/markdown"),
    ("".join(f"{'#' * (i % 6 + 1)} h{i}\nx\n" for i in range(N // 16)), "text/markdown"),
    ("<h1>a</h1>b " * (N // 12), "text/html"),       # the audit's probe, grown to the size limit
    ("<h2><h1>a</h1></h2>" * (N // 19), "text/html"),
])
def test_heading_dense_documents_of_the_largest_size_are_refused_by_their_section_count(
        text: str, media_type: str) -> None:
    err = refused(doc(text, media_type))
    assert err.details["max_sections"] == MAX_SECTIONS and f"more than {MAX_SECTIONS} sections" in err.message


@pytest.mark.parametrize("text", ["<b>x</b>" * (N // 8), "<br>" * (N // 4), "<div>" * (N // 5),
                                  "<!-- -->" * (N // 8)])
def test_tag_dense_html_of_the_largest_size_is_refused_by_its_tag_count(text: str) -> None:
    err = refused(doc(text, "text/html"))
    assert err.details["max_html_tags"] == MAX_HTML_TAGS and f"more than {MAX_HTML_TAGS} HTML tags" in err.message


def test_the_most_sections_allowed_at_the_largest_size_parse_into_that_many() -> None:
    body = "w " * ((N // MAX_SECTIONS - 12) // 2)
    text = "".join(f"## s{i}\n{body}\n" for i in range(MAX_SECTIONS))
    parsed = parse_document(doc(text))
    assert len(parsed.chunks) == MAX_SECTIONS
    assert [c.section for c in parsed.chunks[:2]] == ["s0", "s1"] and parsed.chunks[-1].section == f"s{MAX_SECTIONS - 1}"
    refused(doc(text + "## one more\nw\n"))
    html = "".join(f"<h2>s{i}</h2><p>{body[:-20]}</p>" for i in range(MAX_SECTIONS))
    assert len(parse_document(doc(html, "text/html")).chunks) == MAX_SECTIONS


@pytest.mark.parametrize("text,media_type,chunks", [
    ("# a" + " " * (N - 8) + "b", "text/markdown", 0),                # cubic in the heading pattern
    ("#" + " \t" * (N // 2 - 4) + "x", "text/markdown", 0),
    ("{{<" * (N // 3), "text/markdown", 1),                         # quadratic in the shortcode pattern
    ("---\ntitle: a" + " " * (N - 40) + "b\n---\nword", "text/markdown", 1),   # quadratic title pattern
    ("```\n" + "# a\n" * (N // 4 - 2), "text/markdown", -1),       # headings in a fence are body
    ("\n" * (N - 2) + "x", "text/markdown", 1),
    ("<a " * (N // 3), "text/html", 0),                             # html.parser re-read every one
    ('<a b="' * (N // 6), "text/html", 0),
    ("<p>" + "&amp; " * (N // 7), "text/html", -1),
    ("<div>" * (MAX_HTML_TAGS - 1) + "deep" + "</div>" * 1, "text/html", 1),   # no recursion
    ("<!--" + "-- x" * (N // 4 - 2), "text/html", 0),
])
def test_adversarial_documents_of_the_largest_size_parse(text: str, media_type: str, chunks: int) -> None:
    if chunks == 0:
        assert refused(doc(text, media_type)).message.endswith("has no text")
        return
    parsed = parse_document(doc(text, media_type))
    assert len(parsed.chunks) == chunks if chunks > 0 else len(parsed.chunks) > 1
    assert all(len(c.text.split()) <= WINDOW_WORDS for c in parsed.chunks)


def test_a_heading_with_runs_of_spaces_keeps_its_words() -> None:
    parsed = chunk_markdown("# Runbook\nintro\n## Disk" + " " * 50_000 + "full  ##  \nbody")
    assert parsed.title == "Runbook"
    assert [c.section for c in parsed.chunks] == ["", "Disk" + " " * 50_000 + "full"]


# The one-pass readers against what they replace, on small inputs where the old way is quick.

_OLD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_OLD_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_OLD_SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}")


@given(st.lists(st.sampled_from(["#", "##", "a", " ", "\t", "\x1f", "\xa0", "\u3000", "\u200b", "b #"]),
                max_size=20).map("".join))
def test_heading_lines_read_as_the_pattern_did(line: str) -> None:
    m = _OLD_HEADING.match(line)
    assert _heading(line) == ((len(m.group(1)), m.group(2).strip()) if m else None)


@given(st.lists(st.sampled_from(["title:", " ", "\n", "a", "\t", "'", "\xa0", "b:"]), max_size=16).map("".join))
def test_front_matter_titles_read_as_the_pattern_did(front: str) -> None:
    old, new = _OLD_TITLE.search(front), _TITLE_LINE.search(front)
    assert (old and old.group(1)) == (new and new.group(1))


@given(st.lists(st.sampled_from(["{{<", "{{%", ">}}", "%}}", "}}", "{{", "a", " ", "\n", "<", "%"]),
                max_size=20).map("".join))
def test_shortcodes_are_removed_as_the_pattern_did(text: str) -> None:
    assert _strip_shortcodes(text) == _OLD_SHORTCODE.sub("", text)


def _soup_markdown(html: str) -> str:
    """What html_to_markdown gave before: BeautifulSoup's tree, headings replaced one by one."""
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
    return (f"---\ntitle: {title}\n---\n" if title else "") + soup.get_text("\n")


_TAGS = ["p", "div", "b", "h1", "h2", "h3", "h6", "title", "script", "style", "noscript", "template", "rt",
         "pre", "br", "img", "span", "H2", "BR"]
_WORDS = ["a", "b", " ", "\n", "\t", "\xa0", "#", ";", ">", "=", '"', "'", "/", "-", "&amp;", "&lt;", "&#65;",
          " < ", "<3 "]
_PIECES = st.one_of(
    st.lists(st.sampled_from(_WORDS), max_size=5).map("".join),
    st.builds(lambda name, attr, form: {0: f"<{name}{attr}>", 1: f"</{name}>", 2: f"<{name}{attr}/>"}[form],
              st.sampled_from(_TAGS), st.sampled_from(["", ' class="x y"', " id='z'", " data-x=1"]),
              st.sampled_from([0, 0, 1, 1, 2])),
    st.sampled_from(["<!-- c -->", "<!DOCTYPE html>", "<![CDATA[ cd ]]>", "<?pi x?>", "<![CDATA[]]>"]),
)


@given(st.lists(_PIECES, max_size=40).map("".join))
def test_well_formed_html_reads_as_the_soup_did(html: str) -> None:
    pytest.importorskip("bs4")
    assert html_to_markdown(html) == _soup_markdown(html)


@given(st.text(alphabet=st.sampled_from("<>/!?-=\"' ah1&;#[]CDATA\n"), max_size=60))
def test_any_html_parses_or_is_refused_with_the_typed_error(html: str) -> None:
    try:
        parse_document(doc(html, "text/html"))
    except InvalidDocument:
        pass


async def test_an_upload_is_parsed_off_the_event_loop(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from incidentfox.knowledge import base

    threads: list[int] = []

    def parse(d: Document):
        threads.append(threading.get_ident())
        return parse_document(d)

    monkeypatch.setattr(base, "parse_document", parse)
    kb = KnowledgeBase(LocalObjectStore(tmp_path), embedder=HashEmbedder())
    await kb.put_document(Document(scope=ACME, source="a.md", text="# A\n\nrestart the pod"))
    await kb.rebuild(ACME)
    assert len(threads) == 2 and threading.get_ident() not in threads


async def test_a_stored_document_past_a_limit_is_left_out_of_the_build(tmp_path) -> None:
    """One stored before the limits existed (an upload refuses it now) must not block its scope."""
    kb = KnowledgeBase(LocalObjectStore(tmp_path), embedder=HashEmbedder())
    await kb.put_document(Document(scope=ACME, source="ok.md", text="# Disk\n\ndisk full on node"))
    bomb = Document(scope=ACME, source="bomb.md", text="# a\nb\n" * (MAX_SECTIONS + 1))
    with pytest.raises(InvalidDocument):
        await kb.put_document(bomb)
    await kb.kb.put_document(bomb)          # as an older version stored it
    await kb.rebuild(ACME)
    tree = await kb.tree(ACME)
    assert tree is not None and {n.source for n in tree.nodes} == {"ok.md"}
