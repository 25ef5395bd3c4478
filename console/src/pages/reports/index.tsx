// Reports and schedules: every schedule the token sees with its last outcome and "Run now"
// (POST /api/v1/reports/schedules/{id}/run), what each fire time did, and the stored reports.
import { Button, Callout, Card, Code, Dialog, Flex, Heading, Link as RLink, Text } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import Link from 'next/link';
import { useState } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { StatusBadge } from '@/components/StatusBadge';
import { type Page, seg } from '@/lib/api';
import { usePagedList } from '@/lib/queries';
import { when } from '@/lib/runs';
import { useSession } from '@/lib/session';

type Outcome = { id: number; org: string; team: string; schedule_id: string; kind: string; scheduled_for: string;
                 manual: boolean; catch_up: boolean; status: string; finished_at: string | null;
                 report_id: string | null; run_id: string | null; error: string | null };
type Schedule = { org: string; team: string; schedule_id: string; kind: string; cron: string; timezone: string;
                  channel: string | null; prompt: string | null; last_outcome: Outcome | null };
type Report = { report_id: string; org: string; team: string; kind: string; period_start: string; period_end: string;
                created_at: string; channel: string | null; posted_at: string | null; post_error: string | null };

function ResultLink({ o }: { o: Outcome }) {
  if (o.run_id) return <RLink asChild><Link href={{ pathname: '/runs/view/', query: { id: o.run_id } }}>{o.run_id}</Link></RLink>;
  if (o.report_id) return <Code variant="ghost">{o.report_id}</Code>;
  return <>—</>;
}

function ReportDialog({ id, onClose }: { id: string; onClose: () => void }) {
  const { api } = useSession();
  const report = useQuery({ queryKey: ['report', id],
                            queryFn: () => api.get<Report & { content: unknown }>(`/api/v1/reports/${seg(id)}`) });
  return (
    <Dialog.Root open onOpenChange={(o) => { if (!o) onClose(); }}>
      <Dialog.Content>
        <Dialog.Title>Report {id}</Dialog.Title>
        <Dialog.Description size="2">{report.data ? `${report.data.kind}, ${when(report.data.period_start)} – ${when(report.data.period_end)}` : 'Loading…'}</Dialog.Description>
        <ErrorCallout error={report.error} />
        {report.data ? <pre className="ifx-pre ifx-report" tabIndex={0}>{JSON.stringify(report.data.content, null, 2)}</pre> : null}
        <Flex justify="end" mt="3"><Dialog.Close><Button highContrast variant="soft" color="gray">Close</Button></Dialog.Close></Flex>
      </Dialog.Content>
    </Dialog.Root>
  );
}

const sCol = createColumnHelper<Schedule>();
const oCol = createColumnHelper<Outcome>();
const rCol = createColumnHelper<Report>();

export default function ReportsPage() {
  const { api, org } = useSession();
  const queryClient = useQueryClient();
  const [started, setStarted] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const schedules = useQuery({ queryKey: ['schedules', org],
                               queryFn: () => api.get<Page<Schedule>>('/api/v1/reports/schedules', { org }) });
  const outcomes = usePagedList<Outcome>(['schedule-outcomes', org], '/api/v1/reports/schedules/outcomes', { org },
                                         { limit: 25, refetchInterval: 5_000 });
  const reports = usePagedList<Report>(['reports', org], '/api/v1/reports', { org }, { limit: 25 });
  const runNow = useMutation({
    mutationFn: (s: Schedule) => api.request('POST', `/api/v1/reports/schedules/${seg(s.schedule_id)}/run`,
                                             { query: { org: s.org, team: s.team } }),
    onSuccess: async (_b, s) => {
      setStarted(`${s.team}/${s.schedule_id}`);
      await queryClient.invalidateQueries({ queryKey: ['schedule-outcomes'] });
      await queryClient.invalidateQueries({ queryKey: ['schedules'] });
      await queryClient.invalidateQueries({ queryKey: ['reports'] });
    },
  });
  const scheduleColumns = [
    sCol.accessor('schedule_id', { header: 'Schedule' }),
    sCol.accessor((s) => `${s.org}/${s.team}`, { id: 'team', header: 'Team' }),
    sCol.accessor('kind', { header: 'Kind' }),
    sCol.accessor((s) => `${s.cron} (${s.timezone})`, { id: 'when', header: 'When' }),
    sCol.accessor('channel', { header: 'Posts to', cell: (c) => c.getValue() ?? '—' }),
    sCol.display({ id: 'last', header: 'Last outcome',
                   cell: ({ row }) => (row.original.last_outcome ? <Flex gap="1" align="center">
                     <StatusBadge status={row.original.last_outcome.status} /><Text size="1">{when(row.original.last_outcome.finished_at)}</Text></Flex> : '—') }),
    sCol.display({ id: 'run', header: '', cell: ({ row }) => (
      <Button highContrast size="1" variant="soft" loading={runNow.isPending && runNow.variables?.schedule_id === row.original.schedule_id}
        onClick={() => runNow.mutate(row.original)} aria-label={`Run ${row.original.schedule_id} now`}>Run now</Button>) }),
  ];
  const outcomeColumns = [
    oCol.accessor('scheduled_for', { header: 'Fire time', cell: (c) => when(c.getValue()) }),
    oCol.accessor('schedule_id', { header: 'Schedule' }),
    oCol.accessor('team', { header: 'Team' }),
    oCol.accessor((o) => (o.manual ? 'run now' : o.catch_up ? 'catch-up' : 'scheduled'), { id: 'how', header: 'How' }),
    oCol.accessor('status', { header: 'Outcome', cell: (c) => <StatusBadge status={c.getValue()} /> }),
    oCol.display({ id: 'result', header: 'Result', cell: ({ row }) => <ResultLink o={row.original} /> }),
    oCol.accessor('error', { header: 'Error', cell: (c) => (c.getValue() ? <Text highContrast size="1" color="red">{c.getValue()!.slice(0, 160)}</Text> : '') }),
  ];
  const reportColumns = [
    rCol.accessor('created_at', { header: 'Created', cell: (c) => when(c.getValue()) }),
    rCol.accessor('kind', { header: 'Kind' }),
    rCol.accessor('team', { header: 'Team' }),
    rCol.accessor('posted_at', { header: 'Posted', cell: ({ row }) => (row.original.post_error
      ? <Text highContrast size="1" color="red">{row.original.post_error.slice(0, 120)}</Text> : when(row.original.posted_at)) }),
    rCol.display({ id: 'open', header: '', cell: ({ row }) => (
      <Button highContrast size="1" variant="ghost" onClick={() => setOpen(row.original.report_id)}
        aria-label={`Open report ${row.original.report_id}`}>Open</Button>) }),
  ];
  return (
    <>
      <Heading as="h1" size="6" mb="3">Reports and schedules</Heading>
      <Flex direction="column" gap="4">
        <Card>
          <Heading as="h2" size="4" mb="2">Schedules</Heading>
          {started ? <Callout.Root color="green" role="status" mb="2"><Callout.Text>Started {started}; its outcome appears below.</Callout.Text></Callout.Root> : null}
          <ErrorCallout error={schedules.error ?? runNow.error} />
          <DataTable data={schedules.data?.items ?? []} columns={scheduleColumns} caption="Schedules"
            rowKey={(s) => `${s.org}/${s.team}/${s.schedule_id}`}
            empty={schedules.isLoading ? 'Loading…' : 'No schedule (team config `schedules`).'} />
        </Card>
        <Card>
          <Heading as="h2" size="4" mb="2">Outcomes</Heading>
          <ErrorCallout error={outcomes.error} />
          <DataTable data={outcomes.items} columns={outcomeColumns} caption="Schedule outcomes"
            rowKey={(o) => String(o.id)} empty={outcomes.isLoading ? 'Loading…' : 'Nothing has run yet.'}
            hasMore={outcomes.hasMore} loadingMore={outcomes.isFetchingNextPage} onMore={outcomes.more} />
        </Card>
        <Card>
          <Heading as="h2" size="4" mb="2">Reports</Heading>
          <ErrorCallout error={reports.error} />
          <DataTable data={reports.items} columns={reportColumns} caption="Reports"
            rowKey={(r) => r.report_id} empty={reports.isLoading ? 'Loading…' : 'No report yet.'}
            hasMore={reports.hasMore} loadingMore={reports.isFetchingNextPage} onMore={reports.more} />
        </Card>
      </Flex>
      {open ? <ReportDialog id={open} onClose={() => setOpen(null)} /> : null}
    </>
  );
}
