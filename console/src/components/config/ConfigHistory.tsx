// A node's config versions, newest first, each with its leaf diff (masked by the API) and a rollback,
// which stores that version's config as a new version (the API checks locks and claims again).
import { AlertDialog, Badge, Button, Card, Code, Flex, Heading, Text } from '@radix-ui/themes';
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import type { Change } from '@/lib/configDiff';
import { useSession } from '@/lib/session';

import { ApiErrorDetails } from './ApiErrorDetails';
import { DiffView } from './DiffView';
import css from './config.module.css';

export type Version = { version: number; action: string; actor: string; created_at: string;
                        restored_from: number | null; diff: Change[] };
type HistoryPage = { version: number; items: Version[]; next_cursor: string | null };

export function ConfigHistory({ org, node }: { org: string; node: string }) {
  const { api } = useSession();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState<number | null>(null);
  const [target, setTarget] = useState<Version | null>(null);
  const history = useInfiniteQuery({
    queryKey: ['config', org, node, 'history'],
    queryFn: ({ pageParam }) => api.get<HistoryPage>(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/config/history`,
                                                     { limit: 20, cursor: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const rollback = useMutation({
    mutationFn: (v: Version) => api.post(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/config/rollback`,
                                         { version: v.version }),
    onSuccess: async () => {
      setTarget(null);
      await queryClient.invalidateQueries({ queryKey: ['config', org] });
    },
  });
  const current = history.data?.pages[0]?.version;
  const versions = history.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">History</Heading>
      <ErrorCallout error={history.error} title="Reading the history failed" />
      {history.isLoading ? <Text color="gray">Loading…</Text> : null}
      <ol className={css.history} aria-label={`Config versions of ${node}`}>
        {versions.map((v) => (
          <li key={v.version} data-testid={`version-${v.version}`}>
            <Flex gap="2" align="center" wrap="wrap">
              <Text weight="bold">v{v.version}</Text>
              {v.version === current ? <Badge color="green">current</Badge> : null}
              <Badge color="gray">{v.action}</Badge>
              {v.restored_from !== null ? <Text size="2">restored from v{v.restored_from}</Text> : null}
              <Text size="2" color="gray">{new Date(v.created_at).toLocaleString()} by <Code variant="ghost">{v.actor}</Code></Text>
              <Button size="1" variant="ghost" aria-expanded={open === v.version}
                onClick={() => setOpen(open === v.version ? null : v.version)}>
                {open === v.version ? 'Hide diff' : `Diff (${v.diff.length})`}
              </Button>
              {v.version !== current ? (
                <Button size="1" variant="soft" onClick={() => setTarget(v)}>Roll back to v{v.version}</Button>
              ) : null}
            </Flex>
            {open === v.version ? <DiffView changes={v.diff} caption={`Changes in version ${v.version}`} /> : null}
          </li>
        ))}
      </ol>
      {history.hasNextPage ? (
        <Button variant="soft" loading={history.isFetchingNextPage} onClick={() => history.fetchNextPage()}>Load older</Button>
      ) : null}
      <AlertDialog.Root open={target !== null} onOpenChange={(o) => { if (!o) { rollback.reset(); setTarget(null); } }}>
        <AlertDialog.Content>
          <AlertDialog.Title>Roll {node} back to version {target?.version}?</AlertDialog.Title>
          <AlertDialog.Description size="2">
            Its config becomes what it was at version {target?.version}, stored as a new version (nothing is deleted).
          </AlertDialog.Description>
          <ErrorCallout error={rollback.error} title="Rollback failed" />
          <ApiErrorDetails error={rollback.error} />
          <Flex gap="3" mt="4" justify="end">
            <AlertDialog.Cancel><Button variant="soft" color="gray">Cancel</Button></AlertDialog.Cancel>
            <Button color="orange" loading={rollback.isPending} onClick={() => target && rollback.mutate(target)}>
              Roll back
            </Button>
          </Flex>
        </AlertDialog.Content>
      </AlertDialog.Root>
    </Card>
  );
}
