// A run: header with cancel and rerun, the live timeline over the SSE stream, the RCA with its evidence
// and proposed fixes, and the approvals it waits on. The id comes in the query (/ui/runs/view/?id=run_…):
// a static export cannot prerender one page per run.
import { Button, Card, Code, DataList, Flex, Grid, Heading, Link as RLink, Text } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { useRouter } from 'next/router';
import { useCallback, useMemo, useRef } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { Approvals, mergeApprovals } from '@/components/runs/Approvals';
import { RcaPanel } from '@/components/runs/RcaPanel';
import { RunTimeline } from '@/components/runs/RunTimeline';
import { StatusBadge } from '@/components/StatusBadge';
import { seg } from '@/lib/api';
import { duration, isTerminal, type RunDetail, runTitle, when } from '@/lib/runs';
import { useSession } from '@/lib/session';
import { useRunStream } from '@/lib/useRunStream';

const RUN_ID = /^run_[A-Za-z0-9]{1,64}$/;

export default function RunPage() {
  const router = useRouter();
  const raw = typeof router.query.id === 'string' ? router.query.id : '';
  const runId = RUN_ID.test(raw) ? raw : null;
  const { api } = useSession();
  const queryClient = useQueryClient();
  const run = useQuery({
    queryKey: ['run', runId],
    queryFn: () => api.get<RunDetail>(`/api/v1/agent/runs/${seg(runId!)}`),
    enabled: Boolean(runId),
    refetchInterval: (q) => (isTerminal(q.state.data?.status) ? false : 3_000),
  });
  // Tool calls, approvals and the RCA are rows, not events: reread the run when the stream says something moved.
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onActivity = useCallback(() => {
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      queryClient.invalidateQueries({ queryKey: ['run', runId] });
    }, 400);
  }, [queryClient, runId]);
  const initialEvents = run.data?.events;
  const firstEvents = useRef<typeof initialEvents>(undefined);
  if (firstEvents.current === undefined && initialEvents) firstEvents.current = initialEvents;
  const timeline = useRunStream(runId, firstEvents.current, onActivity);

  const cancel = useMutation({
    mutationFn: () => api.post(`/api/v1/agent/runs/${seg(runId!)}/cancel`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['run', runId] }),
  });
  const rerun = useMutation({
    mutationFn: () => api.post<{ run_id: string }>(`/api/v1/agent/runs/${seg(runId!)}/rerun`),
    onSuccess: (body) => router.push({ pathname: '/runs/view/', query: { id: body.run_id } }),
  });

  const data = run.data;
  const status = data?.status ?? timeline.status ?? undefined;
  const approvals = useMemo(() => mergeApprovals(data?.approvals ?? [], timeline.approvals,
                                                 data?.result?.proposed_actions ?? []),
                            [data?.approvals, data?.result?.proposed_actions, timeline.approvals]);
  if (!runId) {
    return <><Heading as="h1" size="6" mb="3">Run</Heading>
      <Text color="gray">{router.isReady ? 'No run id in the address (open a run from the Runs list).' : 'Loading…'}</Text></>;
  }
  return (
    <>
      <Flex justify="between" align="start" gap="3" mb="3" wrap="wrap">
        <Flex direction="column" gap="1">
          <Heading as="h1" size="6">{data ? runTitle(data) : runId}</Heading>
          <Flex gap="2" align="center"><StatusBadge status={status} /><Code variant="ghost">{runId}</Code></Flex>
        </Flex>
        <Flex gap="2">
          {status && !isTerminal(status) ? (
            <Button highContrast color="red" variant="soft" loading={cancel.isPending} onClick={() => cancel.mutate()}>Cancel</Button>
          ) : null}
          <Button highContrast variant="soft" loading={rerun.isPending} onClick={() => rerun.mutate()} disabled={!data}>Rerun</Button>
        </Flex>
      </Flex>
      <ErrorCallout error={run.error} title="Reading the run failed" />
      <ErrorCallout error={cancel.error} title="Cancel failed" />
      <ErrorCallout error={rerun.error} title="Rerun failed" />
      {data ? (
        <Grid columns={{ initial: '1', md: '3' }} gap="3">
          <Flex direction="column" gap="3" className="ifx-span-2">
            {data.result ? <RcaPanel rca={data.result} /> : (
              <Card><Text color="gray" size="2">{isTerminal(data.status) ? data.error ?? 'No analysis.'
                : 'Investigating… the analysis appears here when the run finishes.'}</Text></Card>)}
            <Approvals runId={runId} rows={approvals} />
            <RunTimeline timeline={timeline} toolCalls={data.tool_calls} live={!isTerminal(status) && !timeline.ended} />
          </Flex>
          <Card>
            <DataList.Root orientation="vertical" size="2">
              <DataList.Item><DataList.Label>Team</DataList.Label><DataList.Value>{data.org} / {data.team}</DataList.Value></DataList.Item>
              <DataList.Item><DataList.Label>Source</DataList.Label><DataList.Value>{data.source}</DataList.Value></DataList.Item>
              <DataList.Item><DataList.Label>Created</DataList.Label><DataList.Value>{when(data.created_at)}</DataList.Value></DataList.Item>
              <DataList.Item><DataList.Label>Took</DataList.Label><DataList.Value>{duration(data.created_at, data.finished_at)}</DataList.Value></DataList.Item>
              {timeline.rerunOf ? (
                <DataList.Item><DataList.Label>Rerun of</DataList.Label><DataList.Value>
                  <RLink asChild><Link href={{ pathname: '/runs/view/', query: { id: timeline.rerunOf } }}>{timeline.rerunOf}</Link></RLink>
                </DataList.Value></DataList.Item>) : null}
              {data.parent_run_id ? (
                <DataList.Item><DataList.Label>Follows up</DataList.Label><DataList.Value>
                  <RLink asChild><Link href={{ pathname: '/runs/view/', query: { id: data.parent_run_id } }}>{data.parent_run_id}</Link></RLink>
                </DataList.Value></DataList.Item>) : null}
              <DataList.Item><DataList.Label>Question</DataList.Label>
                <DataList.Value><Text size="2" className="ifx-pre">{data.trigger?.text ?? ''}</Text></DataList.Value></DataList.Item>
            </DataList.Root>
          </Card>
        </Grid>
      ) : null}
    </>
  );
}
