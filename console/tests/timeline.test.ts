import { describe, expect, it } from 'vitest';

import type { RunEvent } from '@/lib/runs';
import { EMPTY_TIMELINE, timelineReducer } from '@/lib/timeline';

const ev = (seq: number, kind: string, data: Record<string, unknown>): RunEvent =>
  ({ seq, at: `2026-12-04T10:00:${String(seq).padStart(2, '0')}Z`, kind, data });

const RUN = [
  ev(1, 'status', { status: 'queued', rerun_of: 'run_old' }),
  ev(2, 'status', { status: 'running' }),
  ev(3, 'agent', { agent: 'metrics', status: 'running' }),
  ev(4, 'approval', { approval_id: 'apr_1', tool: 'kubernetes_rollout_restart', arguments: { d: 'x' }, status: 'pending' }),
  ev(5, 'note', { approval: 'apr_1', decision: 'approved', by: 'ops' }),
  ev(6, 'agent', { agent: 'metrics', status: 'done', tool_count: 3, duration_s: 1.25 }),
  ev(7, 'phase', { phase: 'rca', root_causes: ['deployment/checkout'] }),
  ev(8, 'approval', { action_id: 'act_1', kind: 'rollback', target: 'checkout', effect: 'roll back', tool: 'kubernetes_rollout_undo' }),
  ev(9, 'status', { status: 'succeeded' }),
];

describe('timelineReducer', () => {
  it('builds agents, approvals and status from the events', () => {
    const t = timelineReducer(EMPTY_TIMELINE, { type: 'events', events: RUN });
    expect(t.status).toBe('succeeded');
    expect(t.lastSeq).toBe(9);
    expect(t.rerunOf).toBe('run_old');
    expect(t.agents).toEqual([{ name: 'metrics', status: 'done', toolCount: 3, durationS: 1.25,
                                firstAt: RUN[2].at, lastAt: RUN[5].at }]);
    expect(t.approvals.map((a) => [a.id, a.kind, a.status, a.by])).toEqual([
      ['apr_1', 'tool_call', 'approved', 'ops'], ['act_1', 'action', 'pending', undefined]]);
    expect(t.items.map((i) => i.label)).toContain('phase: rca');
    expect(t.items.find((i) => i.kind === 'agent' && i.label === 'metrics done')?.detail).toBe('3 tool calls, 1.3 s');
  });

  it('applies each event once, in seq order, whatever the snapshot and the stream overlap', () => {
    const snapshot = timelineReducer(EMPTY_TIMELINE, { type: 'events', events: RUN.slice(0, 5) });
    const streamed = timelineReducer(snapshot, { type: 'events', events: [RUN[6], ...RUN.slice(3)] });
    const once = timelineReducer(EMPTY_TIMELINE, { type: 'events', events: [...RUN].reverse() });
    expect(streamed.items.map((i) => i.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(once).toEqual(timelineReducer(EMPTY_TIMELINE, { type: 'events', events: RUN }));
  });

  it('marks the end and keeps the last status; reset empties it', () => {
    const t = timelineReducer(EMPTY_TIMELINE, { type: 'end', status: 'cancelled' });
    expect([t.ended, t.status]).toEqual([true, 'cancelled']);
    expect(timelineReducer(t, { type: 'reset' })).toEqual(EMPTY_TIMELINE);
  });

  it('an executed fix updates its action', () => {
    const t = timelineReducer(EMPTY_TIMELINE, { type: 'events', events: [
      RUN[7], ev(10, 'note', { action: 'act_1', status: 'executed', tool: 'kubernetes_rollout_undo' })] });
    expect(t.approvals[0].status).toBe('executed');
  });
});
