import { describe, expect, it } from 'vitest';

import { applyMergePatch, buildMergePatch, explainedLeaves, leafDiff, lockFor, looksSecret, maskPreview,
         parseConfigText } from '@/lib/configDiff';

describe('buildMergePatch', () => {
  it('sends only what changed: objects recurse, lists and scalars replace, removed keys become null', () => {
    const before = { llm: { model: 'a', max_turns: 3 }, slack: { default_channel: 'C1' }, tools: { x: true },
                     routing: { services: ['a', 'b'] } };
    const after = { llm: { model: 'b', max_turns: 3 }, routing: { services: ['a'] }, tools: { x: true },
                    quotas: { max_concurrent_runs: 2 } };
    const patch = buildMergePatch(before, after);
    expect(patch).toEqual({ llm: { model: 'b' }, slack: null, routing: { services: ['a'] },
                            quotas: { max_concurrent_runs: 2 } });
    expect(applyMergePatch(before, patch)).toEqual(after);
  });

  it('never sends a secret back unless a new value was typed', () => {
    const before = { llm: { api_key: '***', model: 'a' }, integrations: { prometheus: { url: '***', token: '***' } } };
    expect(buildMergePatch(before, structuredClone(before))).toEqual({});
    const edited = { llm: { api_key: '***', model: 'b' }, integrations: { prometheus: { url: '***', token: 'new-token' } } };
    expect(buildMergePatch(before, edited)).toEqual({ llm: { model: 'b' }, integrations: { prometheus: { token: 'new-token' } } });
    // removing a secret is a null (the API then drops it); a new block leaves placeholder masks out
    const removed = { llm: { model: 'a' }, integrations: { prometheus: { url: '***', token: '***' },
                                                           loki: { url: 'https://l', token: '***' } } };
    expect(buildMergePatch(before, removed)).toEqual({ llm: { api_key: null },
                                                       integrations: { loki: { url: 'https://l' } } });
    expect(JSON.stringify(buildMergePatch(before, removed))).not.toContain('***');
  });

  it('does not mutate its inputs, and null for a key that never existed is no change', () => {
    const before = { a: { b: 1 } };
    const after = { a: { b: 2 }, c: null };
    const copy = structuredClone({ before, after });
    expect(buildMergePatch(before, after)).toEqual({ a: { b: 2 } });
    expect({ before, after }).toEqual(copy);
  });
});

describe('leafDiff and maskPreview', () => {
  it('lists leaf changes in path order like the API history', () => {
    expect(leafDiff({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 1, c: 3 }, d: [1, 2], e: 'x' })).toEqual([
      { path: 'a.c', op: 'replace', old: 2, new: 3 },
      { path: 'd', op: 'replace', old: [1], new: [1, 2] },
      { path: 'e', op: 'add', new: 'x' },
    ]);
    expect(leafDiff({ a: 1 }, {})).toEqual([{ path: 'a', op: 'remove', old: 1 }]);
  });

  it('keeps a newly typed secret off the screen', () => {
    const changes = maskPreview(leafDiff({ llm: { api_key: '***', model: 'a' } },
                                         { llm: { api_key: 'sk-live-123', model: 'b' }, slack_token: 'x' }));
    expect(JSON.stringify(changes)).not.toContain('sk-live-123');
    expect(changes.find((c) => c.path === 'llm.model')?.new).toBe('b');
    expect(looksSecret('integrations.grafana.url')).toBe(true);
    expect(looksSecret('llm.model')).toBe(false);
    expect(looksSecret('integrations.github.private_key')).toBe(true);
  });
});

describe('explained config', () => {
  it('gives every leaf its origin and the lock over it (the most specific lock)', () => {
    const rows = explainedLeaves(
      { llm: { provider: 'openai', model: 'x' }, tools: { a: true }, locked_paths: ['llm'] },
      { 'llm.provider': 'acme', 'llm.model': 'defaults', 'tools.a': 'sre' },
      { llm: 'acme', 'llm.model': 'eng' });
    expect(rows).toEqual([
      { path: 'llm.model', value: 'x', source: 'defaults', lock: 'llm.model', lockedBy: 'eng' },
      { path: 'llm.provider', value: 'openai', source: 'acme', lock: 'llm', lockedBy: 'acme' },
      { path: 'tools.a', value: true, source: 'sre', lock: null, lockedBy: null },
    ]);
    expect(lockFor('llmx', { llm: 'acme' })).toBeNull();
  });

  it('parses the editor text or says what is wrong', () => {
    expect(parseConfigText('{"a": 1}')).toEqual({ doc: { a: 1 } });
    expect(parseConfigText('[1]')).toEqual({ error: 'the config must be a JSON object' });
    expect('error' in parseConfigText('{a:')).toBe(true);
  });
});
