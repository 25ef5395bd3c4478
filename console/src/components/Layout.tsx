// The shell around every page: sign-in gate, sidebar (only the pages this token may see), header with
// who is signed in, the org picker and sign out.
import { Badge, Button, Callout, Flex, Text } from '@radix-ui/themes';
import Link from 'next/link';
import { useRouter } from 'next/router';
import type { ReactNode } from 'react';

import { allowed, navFor } from '@/lib/nav';
import { useSessionState } from '@/lib/session';

import { OrgPicker } from './OrgPicker';
import { SignIn } from './SignIn';

const KIND_LABEL = { global_admin: 'global admin', org_admin: 'org admin', team: 'team',
                     impersonation: 'team (impersonation)' } as const;

export function Layout({ children }: { children: ReactNode }) {
  const { state, session, signIn } = useSessionState();
  const { pathname } = useRouter();
  if (state.status === 'loading') {
    return <main className="ifx-signin"><Text color="gray">Loading…</Text></main>;
  }
  if (state.status === 'signed_out' || !session) {
    return <SignIn onSignIn={signIn} notice={state.status === 'signed_out' ? state.notice : undefined} />;
  }
  const { identity, signOut } = session;
  const entries = navFor(identity.auth_kind);
  const groups = [['operate', 'Operate'], ['configure', 'Configure']] as const;
  return (
    <div className="ifx-shell">
      <a className="ifx-skip" href="#content">Skip to content</a>
      <nav className="ifx-nav" aria-label="Console">
        <Text as="div" weight="bold" size="4" mb="3">IncidentFox</Text>
        {groups.map(([group, label]) => (
          <div key={group}>
            <div className="ifx-nav-group">{label}</div>
            <ul>
              {entries.filter((e) => e.group === group).map((e) => {
                const current = e.href === '/' ? pathname === '/' : `${pathname}/`.startsWith(e.href);
                return (
                  <li key={e.href}>
                    <Link href={e.href} prefetch={false} aria-current={current ? 'page' : undefined}>{e.label}</Link>
                  </li>
                );
              })}
            </ul>
          </div>
        ))}
      </nav>
      <div className="ifx-main">
        <header className="ifx-header">
          <Flex gap="3" align="center">
            <Badge size="2" highContrast data-testid="auth-kind">{KIND_LABEL[identity.auth_kind] ?? identity.auth_kind}</Badge>
            {identity.team_node_id ? <Text size="2">team <strong>{identity.team_node_id}</strong></Text> : null}
            <OrgPicker />
          </Flex>
          <Button variant="soft" color="gray" onClick={() => signOut()}>Sign out</Button>
        </header>
        <main id="content">
          {allowed(identity.auth_kind, pathname) ? children : (
            <Callout.Root color="amber" role="alert">
              <Callout.Text>This token cannot open this page.</Callout.Text>
            </Callout.Root>
          )}
        </main>
      </div>
    </div>
  );
}
