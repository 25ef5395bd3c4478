// An org's tokens (metadata only: the API never returns a token twice), newest first, with revoke.
import { AlertDialog, Badge, Button, Card, Flex, Heading } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useState } from 'react';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { usePagedList } from '@/lib/queries';
import { useSession } from '@/lib/session';

export type TokenRow = { token_id: string; kind: string; org_id: string; team_node_id: string | null; label: string;
                         created_by: string; created_at: string | null; expires_at: string | null;
                         revoked_at: string | null; last_used_at: string | null };

const col = createColumnHelper<TokenRow>();
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

export function TokenList({ org }: { org: string }) {
  const { api, identity } = useSession();
  const queryClient = useQueryClient();
  const [revoking, setRevoking] = useState<TokenRow | null>(null);
  const list = usePagedList<TokenRow>(['tokens', org], `/api/v1/orgs/${seg(org)}/tokens`);
  const revoke = useMutation({
    mutationFn: (t: TokenRow) => api.post(`/api/v1/orgs/${seg(org)}/tokens/${seg(t.token_id)}/revoke`),
    onSuccess: async () => {
      setRevoking(null);
      await queryClient.invalidateQueries({ queryKey: ['tokens', org] });
    },
  });
  const columns = [
    col.accessor('token_id', { header: 'Token id', cell: (c) => <code>{c.getValue()}</code> }),
    col.accessor((t) => (t.kind === 'team' ? `team ${t.team_node_id}` : 'org admin'), { id: 'scope', header: 'For' }),
    col.accessor('label', { header: 'Label' }),
    col.accessor('created_at', { header: 'Created', cell: (c) => when(c.getValue()) }),
    col.accessor('last_used_at', { header: 'Last used', cell: (c) => when(c.getValue()) }),
    col.accessor('expires_at', { header: 'Expires', cell: (c) => (c.getValue() ? when(c.getValue()) : 'never') }),
    col.display({
      id: 'state', header: 'State',
      cell: ({ row }) => (row.original.revoked_at ? <Badge color="gray">revoked</Badge>
        : row.original.expires_at && new Date(row.original.expires_at) < new Date() ? <Badge color="amber">expired</Badge>
          : <Badge color="green">active</Badge>),
    }),
    col.display({
      id: 'revoke', header: '',
      cell: ({ row }) => (row.original.revoked_at || row.original.token_id === identity.token_id ? null : (
        <Button size="1" color="red" variant="soft" onClick={() => setRevoking(row.original)}
          aria-label={`Revoke ${row.original.token_id}`}>Revoke</Button>
      )),
    }),
  ];
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Tokens of {org}</Heading>
      <ErrorCallout error={list.error} title="Listing tokens failed" />
      <DataTable data={list.items} columns={columns} caption={`Tokens of ${org}`} rowKey={(t) => t.token_id}
        empty={list.isLoading ? 'Loading…' : 'No token issued yet.'}
        hasMore={list.hasMore} loadingMore={list.isFetchingNextPage} onMore={list.more} />
      <AlertDialog.Root open={revoking !== null} onOpenChange={(open) => { if (!open) { revoke.reset(); setRevoking(null); } }}>
        <AlertDialog.Content maxWidth="480px">
          <AlertDialog.Title>Revoke {revoking?.token_id}?</AlertDialog.Title>
          <AlertDialog.Description size="2">Every call with it is refused from now on. This cannot be undone.</AlertDialog.Description>
          <ErrorCallout error={revoke.error} title="Revoke failed" />
          <Flex gap="3" mt="4" justify="end">
            <AlertDialog.Cancel><Button variant="soft" color="gray">Cancel</Button></AlertDialog.Cancel>
            <Button color="red" loading={revoke.isPending} onClick={() => revoking && revoke.mutate(revoking)}>Revoke</Button>
          </Flex>
        </AlertDialog.Content>
      </AlertDialog.Root>
    </Card>
  );
}
