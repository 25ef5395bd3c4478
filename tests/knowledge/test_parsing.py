"""Documents to chunks, BM25's analyser, and scope names that cannot be forged into another org's prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kb_fakes import RUNBOOK

from incidentfox.knowledge import Document, InvalidDocument, InvalidScope, Scope, scope
from incidentfox.knowledge.index import plain_tokens, tokens
from incidentfox.knowledge.parsing import WINDOW_WORDS, chunk_markdown, html_to_markdown, parse_document


def test_markdown_sections_keep_heading_path_and_title() -> None:
    parsed = chunk_markdown(RUNBOOK)
    assert parsed.title == "Disk Filling Up"
    sections = [c.section for c in parsed.chunks]
    assert sections == ["Meaning", "Mitigation"]       # the lone H1 is the title, not a section
    mitigation = parsed.chunks[1].text
    assert "logrotate" in mitigation and "du -sh /var/log" in mitigation   # fenced code stays in the body
    assert "this comment is not a heading" in mitigation


def test_nested_headings_and_long_sections_are_windowed() -> None:
    words = " ".join(f"w{i}" for i in range(WINDOW_WORDS * 2))
    parsed = chunk_markdown(f"intro text here\n# A\n## B\n{words}\n## C\nshort\n# D\nend")
    paths = [c.section for c in parsed.chunks]
    assert paths[0] == "" and "A > B" in paths and "A > C" in paths and paths[-1] == "D"
    b = [c for c in parsed.chunks if c.section == "A > B"]
    assert len(b) >= 2 and all(len(c.text.split()) <= WINDOW_WORDS for c in b)
    assert b[0].text.split()[-1] in b[1].text.split()     # windows overlap


def test_html_becomes_sections_without_scripts() -> None:
    html = ("<html><head><title>Cache runbook</title><script>alert('x')</script></head><body>"
            "<h1>Redis</h1><p>intro</p><h2>Mitigation</h2><p>Flush the <b>cache</b>.</p></body></html>")
    doc = Document(scope=Scope(org="acme"), source="r.html", media_type="text/html", text=html)
    parsed = parse_document(doc)
    assert parsed.title == "Cache runbook"
    assert [c.section for c in parsed.chunks] == ["", "Mitigation"]   # the lone <h1> names the page
    assert "Flush the" in parsed.chunks[-1].text and "cache" in parsed.chunks[-1].text
    assert "alert(" not in " ".join(c.text for c in parsed.chunks)
    assert "#" in html_to_markdown("<h3>x</h3>")


def test_plain_text_and_empty_documents() -> None:
    sc = Scope(org="acme")
    parsed = parse_document(Document(scope=sc, source="a.txt", media_type="text/plain", text="restart the pod"))
    assert [(c.section, c.text) for c in parsed.chunks] == [("", "restart the pod")]
    with pytest.raises(InvalidDocument):
        parse_document(Document(scope=sc, source="empty.md", text="---\ntitle: x\n---\n"))


@pytest.mark.parametrize("org,team", [("acme/t=x", None), ("o=acme", None), ("..", None), ("acme", "../b"),
                                      ("acme", "t=x"), ("", None), ("a" * 65, None), ("acme", "a.b")])
def test_scope_names_cannot_spell_another_prefix(org: str, team: str | None) -> None:
    with pytest.raises(InvalidScope) as exc:
        scope(org, team)
    assert exc.value.status == 400


@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=30)))
def test_scope_keys_are_one_org_prefix(org: str, team: str | None) -> None:
    try:
        sc = scope(org, team)
    except InvalidScope:
        return
    key = sc.key()
    assert key.startswith(f"o={org}/") and key.count("/") == 1 and ".." not in key


def test_document_ids_are_stable_and_scoped() -> None:
    a = Document(scope=Scope(org="acme"), source="x.md", text="t")
    assert a.doc_id == Document(scope=Scope(org="acme"), source="x.md", text="other").doc_id
    assert a.doc_id != Document(scope=Scope(org="acme", team="sre"), source="x.md", text="t").doc_id


@pytest.mark.parametrize("doc_id", ["../x", "a/b", "a.json", "x" * 65])
def test_given_doc_ids_are_one_safe_key_segment(doc_id: str) -> None:
    with pytest.raises(ValueError):
        Document(scope=Scope(org="acme"), doc_id=doc_id, source="s", text="t")


def test_bm25_tokens_split_joined_words_and_stem() -> None:
    got = tokens("KubeDaemonSetRolloutStuck: the replicas are failing on node_filesystem_files")
    assert {"kube", "daemon", "set", "rollout", "stuck", "kubedaemonsetrolloutstuck"} <= set(got)
    assert {"replica", "fail", "filesystem", "file"} <= set(got)
    assert "the" not in got and "are" not in got
    assert tokens("failed replica") == tokens("failing replicas")
    assert plain_tokens("HTTPServerDown") == ["httpserverdown"]
    assert tokens("HTTPServerDown") == ["http", "server", "down", "httpserverdown"]
