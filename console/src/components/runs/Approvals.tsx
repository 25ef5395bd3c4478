// Pending tool calls the run waits on (POST /runs/{id}/approvals/{id}) and the RCA's proposed fixes
// (POST /runs/{id}/actions/{id}/approve|deny). The API decides who may (403 not_an_approver is shown).
import { Button, Card, Flex, Heading, Text } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';

import { ErrorCallout } from '@/components/ErrorCallout';
import { StatusBadge } from '@/components/StatusBadge';
import { seg } from '@/lib/api';
import type { Approval, ProposedAction } from '@/lib/runs';
import { useSession } from '@/lib/session';
import type { ApprovalState } from '@/lib/timeline';

type Row = { id: string; kind: 'tool_call' | 'action'; tool: string | null; status: string; arguments: unknown;
             effect?: string; target?: string; by?: string | null };

/** Approvals from the run (the database's word) merged with what the stream said since. */
export function mergeApprovals(rows: Approval[], streamed: ApprovalState[], actions: ProposedAction[]): Row[] {
  const out = new Map<string, Row>();
  for (const s of streamed) out.set(s.id, { ...s, by: s.by ?? null });
  for (const r of rows) {
    out.set(r.approval_id, { ...out.get(r.approval_id), id: r.approval_id, kind: r.kind, tool: r.tool, status: r.status,
                             arguments: r.arguments, by: r.decided_by });
  }
  for (const a of actions) {
    const prev = out.get(a.id);
    out.set(a.id, { id: a.id, kind: 'action', tool: a.tool, arguments: a.arguments ?? {}, effect: a.effect, target: a.target,
                    status: prev?.status ?? (a.tool ? 'pending' : 'not_runnable'), by: prev?.by ?? null });
  }
  return [...out.values()];
}

export function Approvals({ runId, rows }: { runId: string; rows: Row[] }) {
  const { api } = useSession();
  const queryClient = useQueryClient();
  const decide = useMutation({
    mutationFn: ({ row, approve }: { row: Row; approve: boolean }) => (row.kind === 'action'
      ? api.post(`/api/v1/agent/runs/${seg(runId)}/actions/${seg(row.id)}/${approve ? 'approve' : 'deny'}`)
      : api.post(`/api/v1/agent/runs/${seg(runId)}/approvals/${seg(row.id)}`, { decision: approve ? 'approve' : 'deny' })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['run', runId] }),
  });
  if (rows.length === 0) return null;
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Approvals and proposed fixes</Heading>
      <ErrorCallout error={decide.error} title="Decision refused" />
      <Flex direction="column" gap="3">
        {rows.map((r) => (
          <Flex key={r.id} gap="3" align="center" justify="between" wrap="wrap" data-testid="approval" data-id={r.id}>
            <Flex direction="column" gap="1">
              <Text size="2" weight="medium">
                {r.kind === 'action' ? 'Proposed fix' : 'Tool call'}: <code>{r.tool ?? 'carry out by hand'}</code>
                {r.target ? <> on <code>{r.target}</code></> : null}
              </Text>
              {r.effect ? <Text size="1" color="gray">{r.effect}</Text> : null}
              <Text size="1" color="gray"><code>{JSON.stringify(r.arguments ?? {}).slice(0, 300)}</code></Text>
            </Flex>
            <Flex gap="2" align="center">
              <StatusBadge status={r.status} />
              {r.by ? <Text size="1" color="gray">by {r.by}</Text> : null}
              {r.status === 'pending' && r.tool ? (
                <>
                  <Button highContrast size="1" color="green" loading={decide.isPending && decide.variables?.row.id === r.id
                    && decide.variables.approve} onClick={() => decide.mutate({ row: r, approve: true })}
                    aria-label={`Approve ${r.id}`}>Approve</Button>
                  <Button highContrast size="1" color="red" variant="soft" onClick={() => decide.mutate({ row: r, approve: false })}
                    aria-label={`Deny ${r.id}`}>Deny</Button>
                </>
              ) : null}
            </Flex>
          </Flex>
        ))}
      </Flex>
    </Card>
  );
}
