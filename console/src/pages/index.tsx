// Overview: runs per day, success rate, time to first message and to RCA, per team the token sees
// (GET /api/v1/agent/stats), as charts (lazy-loaded) and as a table with the same numbers.
import { Card, Flex, Grid, Heading, Select, Table, Text } from '@radix-ui/themes';
import { useQuery } from '@tanstack/react-query';
import dynamic from 'next/dynamic';
import { useState } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seconds } from '@/lib/runs';
import { useSession } from '@/lib/session';
import { pct, type Stats } from '@/lib/stats';

const Charts = dynamic(() => import('@/components/overview/Charts'), {
  ssr: false, loading: () => <Text size="2" color="gray">Loading charts…</Text>,
});
const WINDOWS = { '7': '7 days', '14': '14 days', '30': '30 days', '90': '90 days' } as const;

function Tile({ label, value }: { label: string; value: string }) {
  return (
    <Card><Text as="div" size="1" color="gray">{label}</Text><Text as="div" size="6" weight="bold">{value}</Text></Card>
  );
}

export default function OverviewPage() {
  const { api, org } = useSession();
  const [days, setDays] = useState<keyof typeof WINDOWS>('14');
  const stats = useQuery({
    queryKey: ['stats', org, days],
    queryFn: () => api.get<Stats>('/api/v1/agent/stats', {
      org, since: new Date(Date.now() - Number(days) * 86_400_000).toISOString() }),
    refetchInterval: 30_000,
  });
  const s = stats.data;
  return (
    <>
      <Flex justify="between" align="center" mb="3">
        <Heading as="h1" size="6">Overview</Heading>
        <label className="ifx-form-row">Window
          <Select.Root value={days} onValueChange={(v) => setDays(v as keyof typeof WINDOWS)}>
            <Select.Trigger aria-label="Window" />
            <Select.Content>{Object.entries(WINDOWS).map(([k, v]) => <Select.Item key={k} value={k}>last {v}</Select.Item>)}</Select.Content>
          </Select.Root>
        </label>
      </Flex>
      <ErrorCallout error={stats.error} title="Reading the overview failed" />
      {s ? (
        <Flex direction="column" gap="4">
          <Grid columns={{ initial: '2', md: '4' }} gap="3">
            <Tile label="Runs" value={String(s.totals.runs)} />
            <Tile label="Success rate" value={pct(s.totals.success_rate)} />
            <Tile label="Time to first message (median)" value={seconds(s.totals.time_to_first_message_s.p50)} />
            <Tile label="Time to RCA (median)" value={seconds(s.totals.time_to_rca_s.p50)} />
          </Grid>
          {s.teams.length ? <Charts stats={s} /> : <Text color="gray">No run in this window.</Text>}
          <Table.Root variant="surface" size="1">
            <caption className="ifx-sr-only">Per team</caption>
            <Table.Header><Table.Row>
              {['Team', 'Runs', 'Succeeded', 'Failed', 'Cancelled', 'Active', 'Success rate',
                'First message (p50)', 'RCA (p50)'].map((h) => <Table.ColumnHeaderCell key={h}>{h}</Table.ColumnHeaderCell>)}
            </Table.Row></Table.Header>
            <Table.Body>
              {s.teams.map((t) => (
                <Table.Row key={`${t.org}/${t.team}`} data-testid="team-stats">
                  <Table.RowHeaderCell>{t.org}/{t.team}</Table.RowHeaderCell>
                  <Table.Cell>{t.runs}</Table.Cell><Table.Cell>{t.succeeded}</Table.Cell><Table.Cell>{t.failed}</Table.Cell>
                  <Table.Cell>{t.cancelled}</Table.Cell><Table.Cell>{t.active}</Table.Cell><Table.Cell>{pct(t.success_rate)}</Table.Cell>
                  <Table.Cell>{seconds(t.time_to_first_message_s.p50)}</Table.Cell><Table.Cell>{seconds(t.time_to_rca_s.p50)}</Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        </Flex>
      ) : stats.isLoading ? <Text color="gray">Loading…</Text> : null}
    </>
  );
}
