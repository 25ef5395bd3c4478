// Every page of the console, once: the sidebar, the sign-in redirect and the tests read this list.
// `kinds` is who may see the entry (the API still decides what each call returns; hiding an entry is
// only so a token is not offered pages it would get 403 from).

export type AuthKind = 'global_admin' | 'org_admin' | 'team' | 'impersonation';

export const ALL_KINDS: readonly AuthKind[] = ['global_admin', 'org_admin', 'team', 'impersonation'];
const ADMINS: readonly AuthKind[] = ['global_admin', 'org_admin'];

export type NavEntry = { href: string; label: string; kinds: readonly AuthKind[]; group: 'operate' | 'configure' };

export const NAV: readonly NavEntry[] = [
  { href: '/', label: 'Overview', kinds: ALL_KINDS, group: 'operate' },
  { href: '/runs/', label: 'Runs', kinds: ALL_KINDS, group: 'operate' },
  { href: '/sandbox/', label: 'Sandbox', kinds: ALL_KINDS, group: 'operate' },
  { href: '/reports/', label: 'Reports', kinds: ALL_KINDS, group: 'operate' },
  { href: '/deliveries/', label: 'Deliveries', kinds: ADMINS, group: 'operate' },
  { href: '/org/', label: 'Org tree', kinds: ALL_KINDS, group: 'configure' },
  { href: '/config/', label: 'Config', kinds: ALL_KINDS, group: 'configure' },
  { href: '/tokens/', label: 'Tokens', kinds: ADMINS, group: 'configure' },
  { href: '/routing/', label: 'Routing', kinds: ADMINS, group: 'configure' },
  { href: '/integrations/', label: 'Integrations', kinds: ALL_KINDS, group: 'configure' },
  { href: '/audit/', label: 'Audit log', kinds: ADMINS, group: 'configure' },
];

export function navFor(kind: AuthKind | undefined): NavEntry[] {
  return kind ? NAV.filter((e) => e.kinds.includes(kind)) : [];
}

/** Whether `kind` may open the page at `pathname` (basePath removed, e.g. '/runs/view/'). */
export function allowed(kind: AuthKind | undefined, pathname: string): boolean {
  if (!kind) return false;
  const path = pathname.endsWith('/') ? pathname : `${pathname}/`;
  // The longest entry that prefixes the path decides ('/' only decides for '/').
  const match = NAV.filter((e) => (e.href === '/' ? path === '/' : path.startsWith(e.href)))
    .sort((a, b) => b.href.length - a.href.length)[0];
  return match ? match.kinds.includes(kind) : true;
}

export function isAdmin(kind: AuthKind | undefined): boolean {
  return kind === 'global_admin' || kind === 'org_admin';
}
