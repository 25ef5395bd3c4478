// A node's integrations (effective config, secrets masked) with "Test connection": the platform sends
// one read-only request with the stored credentials through its egress policy and says how it went.
import { Badge, Button, Card, Code, Flex, Heading, Text } from '@radix-ui/themes';
import { useMutation, useQuery } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useState } from 'react';

import css from '@/components/config/config.module.css';
import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { type Page, seg } from '@/lib/api';
import { type JsonObject, leaves, show } from '@/lib/configDiff';
import { useSession } from '@/lib/session';

export type Integration = { name: string; enabled: boolean; testable: boolean; set_by: string[];
                            config: JsonObject | boolean };
export type ProbeResult = { name: string; ok: boolean; reason: string | null; detail: string;
                            latency_ms: number | null; status_code: number | null; target: string | null };

const col = createColumnHelper<Integration>();

/** One line about a probe's outcome. */
export function describeProbe(r: ProbeResult): string {
  const took = r.latency_ms !== null ? ` in ${r.latency_ms} ms` : '';
  return r.ok ? `Connected${took}: ${r.detail}` : `Failed (${r.reason ?? 'error'})${took}: ${r.detail}`;
}

function ProbeButton({ org, node, row }: { org: string; node: string; row: Integration }) {
  const { api } = useSession();
  const probe = useMutation({
    mutationFn: () => api.post<ProbeResult>(
      `/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/integrations/${seg(row.name)}/test`),
  });
  if (!row.testable) return <Text size="1" color="gray">no test for this integration</Text>;
  return (
    <Flex direction="column" gap="1" align="start">
      <Button size="1" variant="soft" loading={probe.isPending} onClick={() => probe.mutate()}
        aria-label={`Test connection to ${row.name}`}>Test connection</Button>
      {probe.data ? (
        <Text size="1" role="status" data-testid={`probe-${row.name}`}>
          <Badge color={probe.data.ok ? 'green' : 'red'} mr="1">{probe.data.ok ? 'ok' : 'failed'}</Badge>
          {describeProbe(probe.data)}
          {probe.data.target ? <> (<Code variant="ghost">{probe.data.target}</Code>)</> : null}
        </Text>
      ) : null}
      <ErrorCallout error={probe.error} title="Test failed" />
    </Flex>
  );
}

export function Integrations({ org, node }: { org: string; node: string }) {
  const { api } = useSession();
  const [open, setOpen] = useState<string | null>(null);
  const list = useQuery({
    queryKey: ['integrations', org, node],
    queryFn: () => api.get<Page<Integration>>(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/integrations`, { limit: 500 }),
  });
  const columns = [
    col.accessor('name', { header: 'Integration', cell: (c) => <Text weight="bold">{c.getValue()}</Text> }),
    col.accessor('enabled', { header: 'State', cell: (c) => (c.getValue()
      ? <Badge color="green">enabled</Badge> : <Badge color="gray">off</Badge>) }),
    col.accessor((r) => r.set_by.join(', '), { id: 'set_by', header: 'Set by' }),
    col.display({
      id: 'config', header: 'Settings',
      cell: ({ row }) => {
        const cfg = row.original.config;
        const entries = typeof cfg === 'object' ? leaves(cfg) : [];
        return (
          <Flex direction="column" gap="1" align="start">
            <Button size="1" variant="ghost" aria-expanded={open === row.original.name}
              onClick={() => setOpen(open === row.original.name ? null : row.original.name)}>
              {entries.length} setting{entries.length === 1 ? '' : 's'}
            </Button>
            {open === row.original.name ? (
              <ul aria-label={`Settings of ${row.original.name}`}>
                {entries.map(([p, v]) => <li key={p}><Code variant="ghost">{p}</Code> <span className={css.value}>{show(v)}</span></li>)}
              </ul>
            ) : null}
          </Flex>
        );
      },
    }),
    col.display({ id: 'test', header: 'Connection', cell: ({ row }) => <ProbeButton org={org} node={node} row={row.original} /> }),
  ];
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Integrations of {node}</Heading>
      <Text as="p" size="2" color="gray" mb="2">
        From the effective config (set here or inherited); credentials show as ***. Configure them on the
        Config page under <Code variant="ghost">integrations.&lt;name&gt;</Code>.
      </Text>
      <ErrorCallout error={list.error} title="Listing the integrations failed" />
      <DataTable data={list.data?.items ?? []} columns={columns} caption={`Integrations of ${node}`} rowKey={(r) => r.name}
        empty={list.isLoading ? 'Loading…' : 'No integration configured.'} />
    </Card>
  );
}
