"""Evidence verification of the LLM planner's RCA (actors.engine.evidence_check): which quotes count as
found in the run's tool output, and what the RCA a reader sees looks like afterwards."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.engine.agents.untrusted import as_data
from actors.engine.evidence_check import (
    MIN_QUOTE_CHARS,
    UNVERIFIED_CAP,
    Source,
    Sources,
    Verdict,
    adjusted_confidence,
    apply_check,
    check_rca,
    verify_rca,
)
from actors.slack.reporter import rca_blocks
from incidentfox.contracts import RCA, Evidence, RootCause

EVENT = "Readiness probe failed: HTTP probe failed with statuscode: 503"
LOG = 'level=error msg="could not obtain DB connection" pool=checkout\nretry=3'
JSON_LOG = '{"msg": "said \\"hi\\" twice", "level": "warn"}'   # a JSON log line, itself with escapes


def tool_output(tool: str, data: object) -> Source:
    """What a sub-agent's model is shown for one call (the text the engine keeps)."""
    return Source(tool, as_data(f"tool:{tool}", {"ok": True, "summary": "1 row", "data": data}))


SOURCES = Sources([tool_output("kubernetes_get_events", [{"message": EVENT, "count": 14}]),
                   tool_output("loki_query_logs", [{"text": LOG}, {"text": JSON_LOG}]),
                   Source("trigger", {"title": "High 5xx rate on frontend /checkout"})])


def verdict(quote: str) -> Verdict:
    return SOURCES.check(quote).verdict


@pytest.mark.parametrize("quote", [
    EVENT,
    f"  {EVENT}\n",
    EVENT.replace(" ", "\n\t  "),                        # any whitespace, any amount
    f'"{EVENT}"', f"`{EVENT}`", f"“{EVENT}”",             # one pair of wrapping quote marks
    'msg="could not obtain DB connection" pool=checkout retry=3',      # the newline is whitespace
    'msg=\\"could not obtain DB connection\\" pool=checkout\\nretry=3',  # copied from the JSON as is
    'said "hi" twice',                                  # two levels of JSON escaping undone
    'said \\"hi\\" twice',
    "Readiness probe failed: ... statuscode: 503",       # an ellipsis marks an omission
    "Readiness probe failed:…503",
    "High 5xx rate on frontend",                         # the trigger counts as seen
])
def test_quotes_found_in_what_the_run_saw(quote: str) -> None:
    assert verdict(quote) is Verdict.FOUND


@pytest.mark.parametrize("quote", [
    "readiness probe failed: http probe failed",         # case is exact
    "Liveness probe failed: HTTP probe failed",          # invented
    "statuscode: 503 ... Readiness probe failed",        # parts out of order
    "Readiness probe failed ... java.lang.OutOfMemoryError",   # one part invented
    "Readiness probe failed: HTTP probe failed with statuscode: 503 (14 times)",   # more than was there
    "Readinessprobe failed",                             # whitespace removed is not whitespace changed
])
def test_quotes_not_in_any_output(quote: str) -> None:
    assert verdict(quote) is Verdict.NOT_FOUND


@pytest.mark.parametrize("quote", ["503", "error", "  failed  ", '"probe"', "pool ... retry", "...", ""])
def test_trivial_quotes_do_not_count(quote: str) -> None:
    assert verdict(quote) is Verdict.TOO_SHORT


def test_a_quote_is_found_within_one_output_not_across_two() -> None:
    assert verdict("statuscode: 503 ... could not obtain DB connection") is Verdict.NOT_FOUND
    assert SOURCES.check(EVENT).source == "kubernetes_get_events"


SOURCES_LIST = [tool_output("kubernetes_get_events", [{"message": EVENT}]),
                tool_output("loki_query_logs", [{"text": LOG}])]


def _cause(entity: str, confidence: float, *quotes: str) -> RootCause:
    return RootCause(entity=entity, description="d", confidence=confidence,
                     evidence=[Evidence(kind="note", source="planner", quote=q) for q in quotes])


def test_unverified_quotes_are_dropped_and_the_rca_says_so() -> None:
    rca = RCA(summary="s", root_causes=[
        _cause("shop/deployment/checkout", 0.8, EVENT, "java.lang.OutOfMemoryError: Java heap space"),
        _cause("shop/deployment/payments", 0.6, 'msg="could not obtain DB connection"'),
        _cause("rds/postgres", 0.9, "connections maxed out at 100", "error"),
        _cause("cart", 0.3)])
    out, check = verify_rca(rca, SOURCES_LIST)
    assert (check.total, check.dropped, check.too_short) == (5, 3, 1)
    by_entity = {c.entity: c for c in out.root_causes}
    checkout = by_entity["shop/deployment/checkout"]
    assert [e.quote for e in checkout.evidence] == [EVENT]
    assert checkout.evidence[0].source == "kubernetes_get_events"   # labelled with where it was found
    assert checkout.confidence == pytest.approx(0.4)                 # × 1/2 verified
    assert by_entity["rds/postgres"].evidence == [] and by_entity["rds/postgres"].confidence == UNVERIFIED_CAP
    assert by_entity["shop/deployment/payments"].confidence == 0.6   # all verified: unchanged
    assert by_entity["cart"].confidence == 0.3                       # nothing quoted: nothing to check
    # Re-sorted by the lowered confidences.
    assert [c.entity for c in out.root_causes] == ["shop/deployment/payments", "shop/deployment/checkout",
                                                   "cart", "rds/postgres"]
    (note,) = out.notes
    assert "3 of 5 quoted evidence line(s)" in note and "1 too short" in note
    assert "shop/deployment/checkout, rds/postgres" in note
    # The reader sees the note in Slack, under the causes.
    text = json.dumps(rca_blocks(out, run_id="r"), ensure_ascii=False)
    assert "⚠️ Evidence check: 3 of 5" in text and "java.lang.OutOfMemoryError" not in text
    summary = check.summary()
    assert (summary["quotes"], summary["verified"], summary["dropped"]) == (5, 2, 3)
    assert {d["reason"] for d in summary["dropped_quotes"]} == {"not_found", "too_short"}



def test_a_fully_verified_rca_keeps_its_order_and_has_no_note() -> None:
    rca = RCA(summary="s", root_causes=[_cause("a", 0.2, EVENT), _cause("b", 0.9, "pool=checkout retry=3")])
    out, check = verify_rca(rca, SOURCES_LIST)
    assert check.dropped == 0 and out.notes == []
    assert [(c.entity, c.confidence) for c in out.root_causes] == [("a", 0.2), ("b", 0.9)]
    assert "⚠️" not in json.dumps(rca_blocks(out, run_id="r"), ensure_ascii=False)
    assert RCA.model_validate({"summary": "stored before notes existed"}).notes == []


def test_a_check_of_another_rca_is_refused() -> None:
    check = check_rca(RCA(summary="s", root_causes=[_cause("a", 0.5, EVENT)]), SOURCES_LIST)
    with pytest.raises(ValueError, match="does not belong"):
        apply_check(RCA(summary="s"), check)


@given(confidence=st.floats(0, 1), total=st.integers(1, 8), data=st.data())
def test_confidence_never_rises_and_more_verified_never_lowers_it(confidence: float, total: int,
                                                                 data: st.DataObject) -> None:
    verified = data.draw(st.integers(0, total))
    now = adjusted_confidence(confidence, verified=verified, total=total)
    assert 0 <= now <= confidence
    if verified < total:
        assert now <= adjusted_confidence(confidence, verified=verified + 1, total=total)
    if verified == 0:
        assert now <= UNVERIFIED_CAP


WHITESPACE = st.sampled_from([" ", "  ", "\n", "\t", " \n  ", "\r\n", "\u00a0"])


def _rewhitespace(text: str, data: st.DataObject) -> str:
    """``text`` with every whitespace run replaced by another non-empty run, and padding at both ends."""
    runs = re.split(r"(\s+)", text)
    out = "".join(data.draw(WHITESPACE) if re.fullmatch(r"\s+", r) else r for r in runs if r)
    return data.draw(st.sampled_from(["", " ", "\n  "])) + out + data.draw(st.sampled_from(["", "\t", " \n"]))


@given(content=st.one_of(st.text(), st.lists(st.dictionaries(st.sampled_from(["message", "text"]), st.text()))),
       data=st.data())
def test_a_quote_cut_from_any_tool_output_verifies_after_any_whitespace_change(content, data) -> None:
    text = tool_output("some_tool", content).content
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    quote = _rewhitespace(text[start:end], data)
    assert Sources([Source("some_tool", text)]).check(quote).verdict in (Verdict.FOUND, Verdict.TOO_SHORT)


@given(line=st.text(alphabet=st.characters(blacklist_characters=".…\"'`“”‘’", blacklist_categories=("Cs",)),
                    min_size=1),
       data=st.data())
def test_a_line_of_a_json_output_verifies_as_the_model_would_unescape_it(line: str, data) -> None:
    """The value of a field (quotes, newlines and control characters escaped in the output) copied
    as the raw line: found unless it is trivially short."""
    source = tool_output("loki_query_logs", [{"text": f"prefix {line} suffix"}])
    quote = _rewhitespace(line, data)
    found = Sources([source]).check(quote)
    if len(" ".join(line.split())) >= MIN_QUOTE_CHARS:
        assert found.verdict is Verdict.FOUND and found.source == "loki_query_logs"
    else:
        assert found.verdict is Verdict.TOO_SHORT
