// Sandbox sessions: the ones this token sees (GET /api/v1/sandbox/sessions), open one (team tokens),
// and chat in the selected one. The selected session is in the query (?session=…).
import { Button, Flex, Grid, Heading, Link as RLink, TextField } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useRouter } from 'next/router';
import { useState } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { SessionChat } from '@/components/sandbox/SessionChat';
import { StatusBadge } from '@/components/StatusBadge';
import { usePagedList } from '@/lib/queries';
import { when } from '@/lib/runs';
import type { SandboxSession } from '@/lib/sandbox';
import { useSession } from '@/lib/session';

const col = createColumnHelper<SandboxSession>();
const SESSION_ID = /^[A-Za-z0-9_-]{1,80}$/;

export default function SandboxPage() {
  const router = useRouter();
  const { api, identity } = useSession();
  const queryClient = useQueryClient();
  const [title, setTitle] = useState('');
  const raw = typeof router.query.session === 'string' ? router.query.session : '';
  const selected = SESSION_ID.test(raw) ? raw : null;
  const select = (id: string | null) => router.replace({ pathname: router.pathname, query: id ? { session: id } : {} },
                                                       undefined, { shallow: true });
  const list = usePagedList<SandboxSession>(['sandbox-sessions'], '/api/v1/sandbox/sessions', {}, { limit: 50 });
  const open = useMutation({
    mutationFn: () => api.post<{ session_id: string }>('/api/v1/sandbox/sessions', { title: title.trim() }),
    onSuccess: async (body) => {
      setTitle('');
      await queryClient.invalidateQueries({ queryKey: ['sandbox-sessions'] });
      await select(body.session_id);
    },
  });
  const teamToken = identity.auth_kind === 'team' || identity.auth_kind === 'impersonation';
  const columns = [
    col.accessor((s) => s.title || s.session_id, {
      id: 'title', header: 'Session',
      cell: ({ row }) => <RLink href="#" onClick={(e) => { e.preventDefault(); void select(row.original.session_id); }}>
        {row.original.title || row.original.session_id}</RLink>,
    }),
    col.accessor('status', { header: 'Status', cell: (c) => <StatusBadge status={c.getValue()} /> }),
    col.accessor('team_id', { header: 'Team' }),
    col.accessor('turns', { header: 'Turns' }),
    col.accessor('last_active_at', { header: 'Last active', cell: (c) => when(c.getValue()) }),
  ];
  return (
    <>
      <Heading as="h1" size="6" mb="3">Sandbox sessions</Heading>
      {teamToken ? (
        <form className="ifx-form-row" onSubmit={(e) => { e.preventDefault(); open.mutate(); }}>
          <label>Title<TextField.Root value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200}
            placeholder="what is this session for?" /></label>
          <Button highContrast type="submit" loading={open.isPending}>Open a session</Button>
        </form>
      ) : null}
      <ErrorCallout error={open.error} title="Opening a session failed" />
      <ErrorCallout error={list.error} title="Listing sessions failed" />
      <Grid columns={{ initial: '1', lg: '2' }} gap="3" mt="3">
        <Flex direction="column" gap="2">
          <DataTable data={list.items} columns={columns} caption="Sandbox sessions" rowKey={(s) => s.session_id}
            empty={list.isLoading ? 'Loading…' : 'No session yet.'}
            hasMore={list.hasMore} loadingMore={list.isFetchingNextPage} onMore={list.more} />
        </Flex>
        {selected ? <SessionChat sessionId={selected} onDeleted={() => void select(null)} /> : null}
      </Grid>
    </>
  );
}
