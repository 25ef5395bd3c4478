// Runs: a filterable, cursor-paged list (GET /api/v1/agent/runs). Filters live in the query string.
import { Flex, Heading, Link as RLink, Text } from '@radix-ui/themes';
import { createColumnHelper } from '@tanstack/react-table';
import Link from 'next/link';
import { useRouter } from 'next/router';
import { useMemo } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { RunFilterBar } from '@/components/runs/RunFilters';
import { StatusBadge } from '@/components/StatusBadge';
import { usePagedList } from '@/lib/queries';
import { duration, filtersFromQuery, filtersToApi, filtersToQuery, type RunFilters, type RunSummary, runTitle,
         when } from '@/lib/runs';
import { useSession } from '@/lib/session';

const col = createColumnHelper<RunSummary>();
const columns = [
  col.accessor((r) => runTitle(r), {
    id: 'title', header: 'Run',
    cell: ({ row }) => (
      <RLink asChild><Link href={{ pathname: '/runs/view/', query: { id: row.original.run_id } }}>
        {runTitle(row.original)}</Link></RLink>),
  }),
  col.accessor('status', { header: 'Status', cell: (c) => <StatusBadge status={c.getValue()} /> }),
  col.accessor('team', { header: 'Team' }),
  col.accessor('source', { header: 'Source' }),
  col.accessor('created_at', { header: 'Created', cell: (c) => when(c.getValue()) }),
  col.accessor((r) => duration(r.created_at, r.finished_at), { id: 'took', header: 'Took', enableSorting: false }),
];

export default function RunsPage() {
  const router = useRouter();
  const { org, identity } = useSession();
  const filters = useMemo(() => filtersFromQuery(router.query), [router.query]);
  const teamFixed = identity.auth_kind === 'team' || identity.auth_kind === 'impersonation' ? identity.team_node_id : null;
  const apiQuery = useMemo(() => filtersToApi(filters, org), [filters, org]);
  const list = usePagedList<RunSummary>(['runs', apiQuery], '/api/v1/agent/runs', apiQuery,
                                        { limit: 50, enabled: router.isReady, refetchInterval: 10_000 });
  const setFilters = (next: RunFilters) => router.replace({ pathname: router.pathname, query: filtersToQuery(next) },
                                                           undefined, { shallow: true });
  return (
    <>
      <Heading as="h1" size="6" mb="3">Runs</Heading>
      <Flex direction="column" gap="3">
        <RunFilterBar value={filters} onChange={setFilters} teamFixed={teamFixed} />
        {org ? null : identity.auth_kind === 'global_admin' ? <Text size="2" color="gray">All orgs.</Text> : null}
        <ErrorCallout error={list.error} title="Listing runs failed" />
        <DataTable data={list.items} columns={columns} caption="Runs" rowKey={(r) => r.run_id}
          empty={list.isLoading ? 'Loading…' : 'No run matches these filters.'}
          hasMore={list.hasMore} loadingMore={list.isFetchingNextPage} onMore={list.more} />
      </Flex>
    </>
  );
}
