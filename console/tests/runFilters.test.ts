import { describe, expect, it } from 'vitest';

import { filtersFromQuery, filtersToApi, filtersToQuery, NO_FILTERS } from '@/lib/runs';

describe('run filters <-> query string', () => {
  it('round-trips', () => {
    const f = { team: 'payments', status: 'failed', source: 'pagerduty', range: '24h' } as const;
    expect(filtersFromQuery(filtersToQuery(f))).toEqual(f);
    expect(filtersToQuery(NO_FILTERS)).toEqual({});
  });

  it('drops unknown or malformed values instead of sending them', () => {
    expect(filtersFromQuery({ status: 'exploded', range: '2y', team: 'a b/../x', source: ['slack', 'api'] }))
      .toEqual({ team: '', status: '', source: 'slack', range: '' });
  });

  it('turns a range into `since` at a fixed now, and adds the org picked', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    expect(filtersToApi({ ...NO_FILTERS, range: '1h', status: 'running' }, 'acme', now))
      .toEqual({ org: 'acme', status: 'running', since: '2026-12-04T11:00:00.000Z' });
    expect(filtersToApi(NO_FILTERS, null, now)).toEqual({});
  });
});
