// Deliveries: recent webhook deliveries with their outcome (GET /api/v1/agent/deliveries, admins) and
// re-drive (POST /api/v1/agent/deliveries/redrive, the global admin) of the ones whose hand-off failed.
import { Button, Callout, Checkbox, Flex, Heading, Link as RLink, Select, Text } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import Link from 'next/link';
import { useState } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { StatusBadge } from '@/components/StatusBadge';
import { usePagedList } from '@/lib/queries';
import { when } from '@/lib/runs';
import { useSession } from '@/lib/session';

export type DeliveryRow = { id: number; source: string; delivery_id: string; received_at: string | null;
                            event_kind: string; action: string; outcome: string; org_id: string | null;
                            team_id: string | null; run_id: string | null; dispatched_at: string | null;
                            dispatch_attempts: number; dispatch_error: string | null; route_stale: boolean };

const OUTCOMES = ['accepted', 'correlated', 'continued', 'updated', 'unmatched', 'recorded', 'unrouted',
                  'interaction', 'rejected', 'sandbox_opened', 'sandbox_continued'];
const ANY = '_any';
const col = createColumnHelper<DeliveryRow>();

export default function DeliveriesPage() {
  const { api, identity, org } = useSession();
  const queryClient = useQueryClient();
  const [outcome, setOutcome] = useState('');
  const [failed, setFailed] = useState(false);
  const [done, setDone] = useState<number | null>(null);
  const list = usePagedList<DeliveryRow>(['deliveries', outcome, failed, org], '/api/v1/agent/deliveries',
                                         { outcome, failed: failed || undefined }, { limit: 50 });
  const redrive = useMutation({
    mutationFn: (ids: number[] | null) => api.post<{ redriven: number[] }>('/api/v1/agent/deliveries/redrive',
                                                                         ids ? { ids } : {}),
    onSuccess: async (body) => {
      setDone(body.redriven.length);
      await queryClient.invalidateQueries({ queryKey: ['deliveries'] });
    },
  });
  const mayRedrive = identity.auth_kind === 'global_admin';
  const undispatched = (d: DeliveryRow) => !d.dispatched_at;
  const columns = [
    col.accessor('received_at', { header: 'Received', cell: (c) => when(c.getValue()) }),
    col.accessor('source', { header: 'Source' }),
    col.accessor('event_kind', { header: 'Event' }),
    col.accessor('outcome', { header: 'Outcome', cell: (c) => <StatusBadge status={c.getValue()} /> }),
    col.accessor((d) => (d.org_id ? `${d.org_id}/${d.team_id ?? '—'}` : '—'), { id: 'team', header: 'Team' }),
    col.accessor('run_id', {
      header: 'Run',
      cell: (c) => (c.getValue() ? <RLink asChild><Link href={{ pathname: '/runs/view/', query: { id: c.getValue()! } }}>
        {c.getValue()}</Link></RLink> : '—'),
    }),
    col.display({
      id: 'dispatch', header: 'Hand-off',
      cell: ({ row }) => (row.original.dispatched_at ? <Text size="1">done</Text> : (
        <Text highContrast size="1" color="red">{row.original.dispatch_error ? `failed ×${row.original.dispatch_attempts}: ${row.original.dispatch_error.slice(0, 120)}`
          : 'pending'}</Text>)),
    }),
    col.display({
      id: 'redrive', header: '',
      cell: ({ row }) => (mayRedrive && undispatched(row.original) ? (
        <Button highContrast size="1" variant="soft" onClick={() => redrive.mutate([row.original.id])}
          aria-label={`Re-drive delivery ${row.original.id}`}>Re-drive</Button>) : null),
    }),
  ];
  return (
    <>
      <Heading as="h1" size="6" mb="3">Deliveries</Heading>
      <Flex direction="column" gap="3">
        <div className="ifx-form-row">
          <label>Outcome
            <Select.Root value={outcome || ANY} onValueChange={(v) => setOutcome(v === ANY ? '' : v)}>
              <Select.Trigger aria-label="Outcome" />
              <Select.Content>
                <Select.Item value={ANY}>any outcome</Select.Item>
                {OUTCOMES.map((o) => <Select.Item key={o} value={o}>{o}</Select.Item>)}
              </Select.Content>
            </Select.Root>
          </label>
          <Text as="label" size="2"><Flex gap="2" align="center">
            <Checkbox checked={failed} onCheckedChange={(v) => setFailed(v === true)} /> failed hand-offs only</Flex></Text>
          {mayRedrive ? (
            <Button highContrast variant="soft" color="orange" loading={redrive.isPending} onClick={() => redrive.mutate(null)}>
              Re-drive every failed hand-off</Button>) : null}
        </div>
        {done !== null ? <Callout.Root color="green" role="status"><Callout.Text>Re-driven: {done} {done === 1 ? 'delivery' : 'deliveries'}.</Callout.Text></Callout.Root> : null}
        <ErrorCallout error={list.error} title="Listing deliveries failed" />
        <ErrorCallout error={redrive.error} title="Re-drive failed" />
        <DataTable data={list.items} columns={columns} caption="Webhook deliveries" rowKey={(d) => String(d.id)}
          empty={list.isLoading ? 'Loading…' : 'No delivery matches.'}
          hasMore={list.hasMore} loadingMore={list.isFetchingNextPage} onMore={list.more} />
      </Flex>
    </>
  );
}
