// A team's routing claims (which Slack channels, repos, PagerDuty services … route to it), a dry-run
// check that explains conflicts before anything is written, and claim / release for org admins (a
// merge patch of the team's `routing` lists). Another tenant's team is never named: the API says
// "claimed elsewhere" unless this token administers the owner's org.
import { Badge, Button, Card, Code, Flex, Heading, Select, Text, TextField } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useState } from 'react';

import { ApiErrorDetails, conflictOwner } from '@/components/config/ApiErrorDetails';
import css from '@/components/config/config.module.css';
import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import type { JsonObject } from '@/lib/configDiff';
import { isAdmin } from '@/lib/nav';
import { usePagedList } from '@/lib/queries';
import { useSession } from '@/lib/session';

export const CLAIM_LISTS = [
  ['slack_channel_ids', 'Slack channel id'], ['github_repos', 'GitHub repo (owner/name)'],
  ['pagerduty_service_ids', 'PagerDuty service id'], ['incidentio_team_ids', 'incident.io team id'],
  ['alertmanager_receivers', 'Alertmanager receiver'], ['services', 'Service name'],
] as const;
export type ClaimKey = (typeof CLAIM_LISTS)[number][0];

type Claim = { kind: string; key: ClaimKey; value: string; claimed_at: string };
export type Checked = { kind: string; key: ClaimKey; value: string; status: 'held' | 'available' | 'conflict';
                        owner_org_id?: string | null; owner_team_node_id?: string | null; claimed_elsewhere?: boolean };
type Raw = { version: number; config: JsonObject };

const col = createColumnHelper<Claim>();

/** What a check says about one claim, in words. */
export function explain(c: Checked, node: string): string {
  if (c.status === 'held') return `${node} already holds it`;
  if (c.status === 'available') return 'free: no team holds it';
  return `held by ${conflictOwner({ kind: c.kind, value: c.value, owner_org_id: c.owner_org_id ?? null,
                                    owner_team_node_id: c.owner_team_node_id ?? null })}`;
}

export function RoutingClaims({ org, node }: { org: string; node: string }) {
  const { api, identity } = useSession();
  const admin = isAdmin(identity.auth_kind);
  const queryClient = useQueryClient();
  const base = `/api/v1/orgs/${seg(org)}/nodes/${seg(node)}`;
  const claims = usePagedList<Claim>(['claims', org, node], `${base}/routing-claims`, {}, { limit: 200 });
  const raw = useQuery({ queryKey: ['config', org, node, 'raw'], enabled: admin,
                         queryFn: () => api.get<Raw>(`${base}/config/raw`) });
  const [key, setKey] = useState<ClaimKey>('slack_channel_ids');
  const [value, setValue] = useState('');
  const check = useMutation({
    mutationFn: () => api.post<{ items: Checked[] }>(`${base}/routing-claims/check`, { routing: { [key]: [value.trim()] } }),
  });
  const write = useMutation({
    mutationFn: ({ list, values }: { list: ClaimKey; values: string[] }) =>
      api.patch(`${base}/config`, { routing: { [list]: values } }),
    onSuccess: async () => {
      check.reset();
      await queryClient.invalidateQueries({ queryKey: ['claims', org, node] });
      await queryClient.invalidateQueries({ queryKey: ['config', org] });
    },
  });
  const current = (list: ClaimKey): string[] => {
    const routing = raw.data?.config.routing;
    const values = routing && typeof routing === 'object' && !Array.isArray(routing) ? routing[list] : undefined;
    return Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
  };
  const columns = [
    col.accessor('key', { header: 'List', cell: (c) => <Code variant="ghost">{c.getValue()}</Code> }),
    col.accessor('value', { header: 'Identifier', cell: (c) => <Text className={css.value}>{c.getValue()}</Text> }),
    col.accessor('claimed_at', { header: 'Since', cell: (c) => new Date(c.getValue()).toLocaleString() }),
    ...(admin ? [col.display({
      id: 'release', header: 'Action',
      cell: ({ row }) => (
        <Button size="1" variant="soft" color="red" aria-label={`Release ${row.original.value}`}
          onClick={() => write.mutate({ list: row.original.key,
                                        values: current(row.original.key).filter((v) => v !== row.original.value) })}>
          Release
        </Button>),
    })] : []),
  ];
  const result = check.data?.items[0];
  return (
    <Flex direction="column" gap="4">
      <Card>
        <Heading as="h2" size="4" mb="2">Claims of {node}</Heading>
        <ErrorCallout error={claims.error} title="Listing the claims failed" />
        <DataTable data={claims.items} columns={columns} caption={`Routing claims of ${node}`} rowKey={(c) => `${c.kind}:${c.value}`}
          empty={claims.isLoading ? 'Loading…' : 'This team claims nothing yet: no alert routes to it.'}
          hasMore={claims.hasMore} loadingMore={claims.isFetchingNextPage} onMore={claims.more} />
      </Card>
      {admin ? (
        <Card>
          <Heading as="h2" size="4" mb="2">Check and claim an identifier</Heading>
          <form className={css.filters} onSubmit={(e) => { e.preventDefault(); if (value.trim()) check.mutate(); }}>
            <label>
              Kind
              <Select.Root value={key} onValueChange={(v) => { setKey(v as ClaimKey); check.reset(); }}>
                <Select.Trigger aria-label="Claim kind" />
                <Select.Content>
                  {CLAIM_LISTS.map(([k, label]) => <Select.Item key={k} value={k}>{label}</Select.Item>)}
                </Select.Content>
              </Select.Root>
            </label>
            <label>
              Identifier
              <TextField.Root aria-label="Identifier" value={value} maxLength={255}
                onChange={(e) => { setValue(e.target.value); check.reset(); write.reset(); }} />
            </label>
            <Button type="submit" disabled={!value.trim()} loading={check.isPending}>Check</Button>
          </form>
          <ErrorCallout error={check.error} title="Check failed" />
          {result ? (
            <Flex gap="2" align="center" wrap="wrap" data-testid="claim-check">
              <Badge color={result.status === 'conflict' ? 'red' : result.status === 'held' ? 'blue' : 'green'}>
                {result.status === 'conflict' ? (result.claimed_elsewhere ? 'claimed elsewhere' : 'conflict') : result.status}
              </Badge>
              <Text size="2"><Code variant="ghost">{result.value}</Code>: {explain(result, node)}</Text>
              {result.status === 'available' ? (
                <Button size="1" loading={write.isPending}
                  onClick={() => write.mutate({ list: key, values: [...current(key), result.value] })}>
                  Claim for {node}
                </Button>
              ) : null}
            </Flex>
          ) : null}
          <ErrorCallout error={write.error} title="Saving the claims failed" />
          <ApiErrorDetails error={write.error} />
        </Card>
      ) : null}
    </Flex>
  );
}
