"""Merge semantics: deep merge of layers and RFC 7396 merge patches (property-based)."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from config_service.core.merge import (
    changes,
    deep_merge,
    iter_leaves,
    make_patch,
    merge_patch,
    patch_paths,
    paths_overlap,
)

KEYS = st.sampled_from(["a", "b", "c", "llm", "provider", "x"])
SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
                    max_leaves=12)
# Config layers hold no nulls in objects (a patch's null removes the key instead of storing it).
NN_SCALARS = st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
LAYER_VALUE = st.recursive(NN_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)
LAYER = st.dictionaries(KEYS, LAYER_VALUE, max_size=4)
PATCH = st.dictionaries(KEYS, JSON, max_size=4)


def _walk_lookup(doc, path):
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


_MISSING = object()


@settings(max_examples=300)
@given(st.lists(LAYER, min_size=1, max_size=4))
def test_deep_merge_never_mutates_inputs(layers):
    before = copy.deepcopy(layers)
    result = deep_merge(*layers)
    assert layers == before
    # and the result does not alias any input: mutating it leaves the inputs untouched
    for _, value in iter_leaves(result):
        if isinstance(value, list):
            value.append("mutated")
    for path, _ in list(iter_leaves(result)):
        parent = _walk_lookup(result, path[:-1])
        parent[path[-1] + "_new"] = 1
    assert layers == before


@settings(max_examples=300)
@given(st.lists(LAYER, min_size=1, max_size=4))
def test_deep_merge_last_layer_wins(layers):
    result = deep_merge(*layers)
    for path, value in iter_leaves(layers[-1]):
        assert _walk_lookup(result, path) == value
    # every leaf of the result comes from the last layer that set that leaf path
    for path, value in iter_leaves(result):
        setters = [layer for layer in layers if _walk_lookup(layer, path) is not _MISSING
                   and not isinstance(_walk_lookup(layer, path), dict)]
        assert setters and _walk_lookup(setters[-1], path) == value


def test_deep_merge_objects_merge_scalars_and_lists_replace():
    org = {"llm": {"provider": "openai", "model": "a"}, "tools": ["x", "y"], "n": 1}
    team = {"llm": {"model": "b"}, "tools": ["z"], "n": {"nested": True}}
    assert deep_merge(org, team) == {"llm": {"provider": "openai", "model": "b"}, "tools": ["z"],
                                     "n": {"nested": True}}
    # the incidentfox bug this module fixes: merging [org, team] must not change org
    assert org == {"llm": {"provider": "openai", "model": "a"}, "tools": ["x", "y"], "n": 1}


@settings(max_examples=300)
@given(JSON, PATCH)
def test_merge_patch_never_mutates_inputs(target, patch):
    t0, p0 = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert target == t0 and patch == p0


@settings(max_examples=300)
@given(LAYER, PATCH)
def test_merge_patch_null_removes_and_values_set(target, patch):
    result = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
    for key in target:
        if key not in patch:
            assert result[key] == target[key]
    # applying the same patch twice changes nothing more (idempotent)
    assert merge_patch(result, patch) == result


@settings(max_examples=300)
@given(LAYER, LAYER)
def test_make_patch_round_trips(old, new):
    assert merge_patch(old, make_patch(old, new)) == new


def test_merge_patch_rfc7396_examples():
    # RFC 7396 appendix A (subset)
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert merge_patch({"a": "foo"}, None) is None
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_null_override_removal_lets_parent_show_through():
    org = {"llm": {"model": "org-model"}}
    team = merge_patch({}, {"llm": {"model": "team-model"}})
    assert deep_merge(org, team)["llm"]["model"] == "team-model"
    team = merge_patch(team, {"llm": {"model": None}})
    assert deep_merge(org, team)["llm"]["model"] == "org-model"


def test_patch_paths_and_overlap():
    assert sorted(patch_paths({"llm": {"provider": "x", "model": None}, "tools": {}})) == [
        ("llm", "model"), ("llm", "provider")]
    assert paths_overlap(("llm",), ("llm", "provider"))
    assert paths_overlap(("llm", "provider", "x"), ("llm", "provider"))
    assert not paths_overlap(("llm", "model"), ("llm", "provider"))


def test_changes_reports_leaf_level_diff():
    old = {"llm": {"provider": "a", "model": "m"}, "gone": {"x": 1}, "n": 1}
    new = {"llm": {"provider": "b", "model": "m"}, "n": {"k": 2}}
    assert changes(old, new) == [
        {"path": "gone.x", "op": "remove", "old": 1},
        {"path": "llm.provider", "op": "replace", "old": "a", "new": "b"},
        {"path": "n", "op": "remove", "old": 1},
        {"path": "n.k", "op": "add", "new": 2},
    ]
    assert changes(new, new) == []
