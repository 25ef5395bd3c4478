import { describe, expect, it } from 'vitest';

import { applyTurnEvent, type ChatLine, transcriptLines } from '@/lib/sandbox';

describe('sandbox chat', () => {
  it('streams thoughts into one assistant line and joins tool ends to their starts', () => {
    let lines: ChatLine[] = [{ kind: 'user', text: 'say hello' }];
    for (const [type, data] of [
      ['thought', { text: 'Check' }], ['thought', { text: 'ing.' }],
      ['tool_start', { id: 't1', name: 'Bash', input: { command: 'echo hi' } }],
      ['tool_end', { id: 't1', name: 'Bash', output: 'hi', is_error: false, duration_s: 0.2 }],
      ['approval', { approval_id: 'a1', tool: 'mcp_x', status: 'pending' }],
      ['approval', { approval_id: 'a1', tool: 'mcp_x', status: 'approved' }],
      ['interrupted', { reason: 'interrupted by user' }],
    ] as const) lines = applyTurnEvent(lines, type, data as Record<string, unknown>);
    expect(lines).toEqual([
      { kind: 'user', text: 'say hello' }, { kind: 'assistant', text: 'Checking.' },
      { kind: 'tool', id: 't1', name: 'Bash', input: { command: 'echo hi' }, output: 'hi', isError: false, durationS: 0.2 },
      { kind: 'approval', id: 'a1', tool: 'mcp_x', status: 'approved' },
      { kind: 'end', status: 'interrupted', text: 'interrupted by user' },
    ]);
  });

  it('reads a stored transcript with tool results', () => {
    const lines = transcriptLines([
      { role: 'user', content: 'hi', seq: 1, created_at: '' },
      { role: 'assistant', content: [{ type: 'text', text: 'On it.' }, { type: 'tool_use', id: 'u1', name: 'Bash', input: {} }], seq: 2, created_at: '' },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'u1', content: [{ type: 'text', text: 'ok' }] }], seq: 3, created_at: '' },
    ]);
    expect(lines).toEqual([{ kind: 'user', text: 'hi' }, { kind: 'assistant', text: 'On it.' },
                           { kind: 'tool', id: 'u1', name: 'Bash', input: {}, output: 'ok', isError: false }]);
  });
});
