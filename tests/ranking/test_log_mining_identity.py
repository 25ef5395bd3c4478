"""``mine`` asks Drain only when its answer may change; the templates and ids are those of Drain
asked for every line (drain3's ``TemplateMiner``), on generated logs that repeat, interleave and
generalise messages, including literal ``<*>`` tokens and empty lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ranking.log_templates import _drain, mask, mine

WORDS = st.sampled_from(["GET", "POST", "/api/v1/items", "failed", "to", "connect", "db", "timeout", "ok",
                         "user=42", "id=7", "<*>", "a", "b", "c", "retry", "done", "42", "3.5s", "x"])
# messages of one length over a tiny alphabet share Drain's tree leaves: templates generalise and a
# message can stop matching the cluster it joined first
MESSAGES = st.one_of(st.lists(WORDS, min_size=0, max_size=7).map(" ".join),
                     st.lists(st.sampled_from(["a", "b", "c"]), min_size=6, max_size=6).map(" ".join))


def reference(texts: list[str]) -> tuple[list[int], dict[int, str]]:
    drain = _drain()
    ids = []
    for text in texts:
        cluster, _ = drain.add_log_message(mask(" ".join(text.split())))
        ids.append(cluster.cluster_id)
    return ids, {c.cluster_id: c.get_template() for c in drain.clusters}


@settings(max_examples=400, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=12), st.lists(st.integers(0, 11), max_size=120))
def test_mine_is_drain_on_every_line(messages: list[str], picks: list[int]) -> None:
    texts = [messages[i % len(messages)] for i in picks] + messages   # repeats, interleaved
    assert mine(texts) == reference(texts)


def test_a_text_goes_to_a_cluster_created_after_its_last_add_when_that_one_matches_it_better() -> None:
    """Why ``mine`` asks Drain again after any cluster change: ``m`` joined cluster 1, which then
    generalised to 7 of its 10 words; cluster 2, created next, matches ``m`` on 9. Drain now puts
    ``m`` in cluster 2, so reusing ``m``'s earlier cluster would be wrong (random short messages
    rarely reach this, hence the fixed case)."""
    m = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
    generalises = "alpha bravo charlie delta echo foxtrot golf xray yankee zulu"
    closer = "alpha bravo charlie delta echo foxtrot kilo hotel india juliet"
    texts = [m, generalises, closer, m]
    ids, templates = mine(texts)
    assert (ids, templates) == reference(texts)
    assert ids == [1, 1, 2, 2] and templates[2].endswith("<*> hotel india juliet")
