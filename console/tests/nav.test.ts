import { describe, expect, it } from 'vitest';

import { allowed, NAV, navFor } from '@/lib/nav';

describe('nav', () => {
  it('shows a team token no admin-only page', () => {
    const hrefs = navFor('team').map((e) => e.href);
    expect(hrefs).toContain('/runs/');
    expect(hrefs).not.toContain('/tokens/');
    expect(hrefs).not.toContain('/audit/');
  });

  it('shows admins every page', () => {
    expect(navFor('global_admin')).toHaveLength(NAV.length);
    expect(navFor('org_admin')).toHaveLength(NAV.length);
  });

  it('shows nothing before sign-in', () => {
    expect(navFor(undefined)).toEqual([]);
    expect(allowed(undefined, '/')).toBe(false);
  });

  it('decides sub-pages by their section', () => {
    expect(allowed('team', '/runs/view')).toBe(true);
    expect(allowed('team', '/tokens')).toBe(false);
    expect(allowed('team', '/tokens/')).toBe(false);
    expect(allowed('org_admin', '/tokens/')).toBe(true);
    expect(allowed('team', '/')).toBe(true);
  });
});
