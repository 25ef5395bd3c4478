// The effective config of a node, leaf by leaf: value, where it comes from (the `explain` view) and the
// lock over it. Anyone who may read the node sees this (org admins, and the team's own token).
import { Badge, Card, Code, Flex, Heading, Text, TextField } from '@radix-ui/themes';
import { useQuery } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useState } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { type ExplainedLeaf, explainedLeaves, type JsonObject, show } from '@/lib/configDiff';
import { useSession } from '@/lib/session';
import css from './config.module.css';

export type Explained = { org_id: string; node_id: string; epoch: number; config: JsonObject;
                          sources: Record<string, string>; locks: Record<string, string> };

const col = createColumnHelper<ExplainedLeaf>();

export function useExplained(org: string, node: string) {
  const { api } = useSession();
  return useQuery({
    queryKey: ['config', org, node, 'effective'],
    queryFn: () => api.get<Explained>(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/config/effective`,
                                      { explain: true }),
  });
}

export function EffectiveConfig({ org, node }: { org: string; node: string }) {
  const explained = useExplained(org, node);
  const [filter, setFilter] = useState('');
  const rows = explained.data
    ? explainedLeaves(explained.data.config, explained.data.sources, explained.data.locks)
      .filter((r) => !filter || r.path.includes(filter.trim()))
    : [];
  const columns = [
    col.accessor('path', { header: 'Path', cell: (c) => <Code variant="ghost">{c.getValue()}</Code> }),
    col.accessor((r) => show(r.value), { id: 'value', header: 'Value',
                                         cell: (c) => <Text className={css.value}>{c.getValue()}</Text> }),
    col.accessor('source', {
      header: 'Set by',
      cell: (c) => (c.getValue() === 'defaults' || !c.getValue()
        ? <Badge color="gray">default</Badge>
        : <Badge color={c.getValue() === node ? 'orange' : 'blue'}>{c.getValue()}</Badge>),
    }),
    col.accessor('lockedBy', {
      header: 'Lock',
      cell: ({ row }) => (row.original.lockedBy
        ? <Badge color="red" title={`locked at ${row.original.lock}`}>🔒 locked by {row.original.lockedBy}</Badge>
        : null),
    }),
  ];
  const locks = Object.entries(explained.data?.locks ?? {});
  return (
    <Card>
      <Flex justify="between" align="center" mb="2" gap="3" wrap="wrap">
        <Heading as="h2" size="4">Effective config of {node}</Heading>
        <TextField.Root size="1" placeholder="Filter paths" aria-label="Filter paths" value={filter}
          onChange={(e) => setFilter(e.target.value)} />
      </Flex>
      <Text as="p" size="2" color="gray" mb="2">
        Defaults, then the org, each unit down the path, then the node. Secrets show as ***.
        {explained.data ? ` Org epoch ${explained.data.epoch}.` : ''}
      </Text>
      {locks.length ? (
        <Text as="p" size="2" mb="2" data-testid="locks">
          Locked paths: {locks.map(([path, by]) => <Badge key={path} color="red" mr="1">{path} (by {by})</Badge>)}
        </Text>
      ) : null}
      <ErrorCallout error={explained.error} title="Reading the effective config failed" />
      <DataTable data={rows} columns={columns} caption={`Effective config of ${node}`} rowKey={(r) => r.path}
        empty={explained.isLoading ? 'Loading…' : 'No leaf matches.'} />
    </Card>
  );
}
