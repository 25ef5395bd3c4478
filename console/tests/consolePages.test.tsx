import { Theme } from '@radix-ui/themes';
import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { auditQuery, NO_FILTERS } from '@/components/audit/AuditLog';
import { DiffView } from '@/components/config/DiffView';
import { describeProbe } from '@/components/integrations/Integrations';
import { explain } from '@/components/routing/RoutingClaims';

describe('DiffView', () => {
  it('shows one row per change with old and new values, secrets as the API masked them', () => {
    render(<Theme><DiffView caption="v2" changes={[
      { path: 'llm.model', op: 'replace', old: 'a', new: 'b' },
      { path: 'integrations.x.token', op: 'add', new: '***' },
      { path: 'tools', op: 'remove', old: { a: true } },
    ]} /></Theme>);
    const rows = screen.getAllByTestId('diff-row');
    expect(rows).toHaveLength(3);
    expect(within(rows[0]).getByText('llm.model')).toBeTruthy();
    expect(within(rows[0]).getByText('b')).toBeTruthy();
    expect(within(rows[1]).getByText('***')).toBeTruthy();
    expect(within(rows[2]).getByText('{"a":true}')).toBeTruthy();
    expect(within(rows[2]).getByText('remove')).toBeTruthy();
  });

  it('says so when there is nothing to show', () => {
    render(<Theme><DiffView caption="none" changes={[]} /></Theme>);
    expect(screen.getByText('No change.')).toBeTruthy();
  });
});

describe('routing conflict explanations', () => {
  it('names the owner only when the API did', () => {
    expect(explain({ kind: 'service', key: 'services', value: 'api', status: 'conflict', owner_org_id: 'acme',
                     owner_team_node_id: 'sre', claimed_elsewhere: false }, 'web')).toBe('held by team sre (org acme)');
    const hidden = explain({ kind: 'service', key: 'services', value: 'api', status: 'conflict', owner_org_id: null,
                             owner_team_node_id: null, claimed_elsewhere: true }, 'web');
    expect(hidden).toBe('held by another tenant (claimed elsewhere)');
    expect(explain({ kind: 'service', key: 'services', value: 'api', status: 'held' }, 'web')).toBe('web already holds it');
  });
});

describe('probe and audit helpers', () => {
  it('describes a probe outcome', () => {
    expect(describeProbe({ name: 'p', ok: true, reason: null, detail: 'p answered HTTP 200', latency_ms: 12,
                           status_code: 200, target: null })).toBe('Connected in 12 ms: p answered HTTP 200');
    expect(describeProbe({ name: 'p', ok: false, reason: 'egress_refused', detail: 'loopback', latency_ms: null,
                           status_code: null, target: null })).toBe('Failed (egress_refused): loopback');
  });

  it('builds the audit query from the filters, leaving empty ones out', () => {
    expect(auditQuery(NO_FILTERS)).toEqual({ actor: undefined, action: undefined, node: undefined, since: undefined,
                                             until: undefined });
    const q = auditQuery({ ...NO_FILTERS, action: ' config.* ', node: 'sre', since: '2026-01-02T03:04' });
    expect(q.action).toBe('config.*');
    expect(q.node).toBe('sre');
    expect(q.since).toBe(new Date('2026-01-02T03:04').toISOString());
  });
});
