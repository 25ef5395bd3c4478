// The signed-in session: the bearer token (memory + sessionStorage only: never a URL, never
// localStorage, so it dies with the tab), who it is (GET /api/v1/auth/whoami) and, for a global admin,
// which org the pages look at. Pages read it with useSession(); the Layout renders them only once
// signed in.
import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';

import { ApiError, type ApiClient, createApiClient } from './api';
import type { AuthKind } from './nav';

export const TOKEN_KEY = 'incidentfox.console.token';
export const ORG_KEY = 'incidentfox.console.org';

export type Identity = { auth_kind: AuthKind; org_id: string | null; team_node_id: string | null;
                         token_id: string | null };

type State =
  | { status: 'loading' }
  | { status: 'signed_out'; notice?: string }
  | { status: 'signed_in'; token: string; identity: Identity };

export type Session = {
  identity: Identity;
  api: ApiClient;
  /** The org the pages show: the token's own, or the one a global admin picked (null: none yet). */
  org: string | null;
  setOrg(org: string | null): void;
  signOut(notice?: string): void;
};

type Ctx = { state: State; session: Session | null; signIn(token: string): Promise<void> };

const SessionContext = createContext<Ctx | null>(null);

function storage(): Storage | null {
  try {
    return typeof window === 'undefined' ? null : window.sessionStorage;
  } catch {
    return null;   // storage disabled: the token lives in memory only
  }
}

export async function whoami(token: string): Promise<Identity> {
  return createApiClient(token).get<Identity>('/api/v1/auth/whoami');
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [state, setState] = useState<State>({ status: 'loading' });
  const [pickedOrg, setPickedOrg] = useState<string | null>(null);

  const signOut = useCallback((notice?: string) => {
    storage()?.removeItem(TOKEN_KEY);
    storage()?.removeItem(ORG_KEY);
    queryClient.clear();
    setPickedOrg(null);
    setState({ status: 'signed_out', notice });
  }, [queryClient]);

  const signIn = useCallback(async (raw: string) => {
    const token = raw.trim();
    if (!token) throw new Error('paste a token');
    const identity = await whoami(token);
    queryClient.clear();
    storage()?.setItem(TOKEN_KEY, token);
    setPickedOrg(identity.auth_kind === 'global_admin' ? storage()?.getItem(ORG_KEY) ?? null : null);
    setState({ status: 'signed_in', token, identity });
  }, [queryClient]);

  useEffect(() => {   // a reload in the same tab keeps the session
    const saved = storage()?.getItem(TOKEN_KEY);
    if (!saved) {
      setState({ status: 'signed_out' });
      return;
    }
    signIn(saved).catch((e) => {
      storage()?.removeItem(TOKEN_KEY);
      setState({ status: 'signed_out',
                 notice: e instanceof ApiError && e.status === 401 ? 'Your token is no longer valid.' : undefined });
    });
  }, [signIn]);

  const token = state.status === 'signed_in' ? state.token : null;
  const api = useMemo(() => (token ? createApiClient(token, (err) => {
    // Revoked or expired mid-session: end it rather than show a page of errors.
    if (err.code === 'token_revoked' || err.code === 'token_expired' || err.code === 'invalid_token') {
      signOut(`Signed out: ${err.message}`);
    }
  }) : null), [token, signOut]);

  const session = useMemo<Session | null>(() => {
    if (state.status !== 'signed_in' || !api) return null;
    const { identity } = state;
    const org = identity.auth_kind === 'global_admin' ? pickedOrg : identity.org_id;
    return {
      identity, api, org, signOut,
      setOrg: (next) => {
        if (identity.auth_kind !== 'global_admin') return;
        if (next) storage()?.setItem(ORG_KEY, next); else storage()?.removeItem(ORG_KEY);
        setPickedOrg(next);
      },
    };
  }, [state, api, pickedOrg, signOut]);

  const value = useMemo(() => ({ state, session, signIn }), [state, session, signIn]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSessionState(): Ctx {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error('useSessionState outside SessionProvider');
  return ctx;
}

/** The signed-in session; pages render only inside the Layout's signed-in gate. */
export function useSession(): Session {
  const { session } = useSessionState();
  if (!session) throw new Error('useSession before sign-in (render pages inside <Layout>)');
  return session;
}
