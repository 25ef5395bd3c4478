// The rename / move / delete dialog of one node (PATCH or DELETE /api/v1/orgs/{org}/nodes/{node}).
import { AlertDialog, Button, Dialog, Flex, Select, TextField } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { useSession } from '@/lib/session';
import { moveTargets, type OrgNode } from '@/lib/tree';

type Acting = { node: OrgNode; mode: 'rename' | 'move' | 'delete' } | null;

export function NodeActions({ org, nodes, acting, onDone }: { org: string; nodes: OrgNode[]; acting: Acting;
                                                               onDone(): void }) {
  const { api } = useSession();
  const queryClient = useQueryClient();
  const [value, setValue] = useState('');
  const node = acting?.node;
  useEffect(() => {
    setValue(acting?.mode === 'rename' ? acting.node.name ?? '' : acting?.mode === 'move' ? acting.node.parent_id ?? org : '');
  }, [acting, org]);
  const path = node ? `/api/v1/orgs/${seg(org)}/nodes/${seg(node.node_id)}` : '';
  const change = useMutation({
    mutationFn: async () => {
      if (!acting) return;
      if (acting.mode === 'delete') return api.del(path);
      return api.patch(path, acting.mode === 'rename' ? { name: value } : { parent_id: value });
    },
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ['nodes', org] });
      close();
    },
  });
  function close() {
    change.reset();
    onDone();
  }
  if (!acting || !node) return null;
  if (acting.mode === 'delete') {
    return (
      <AlertDialog.Root open onOpenChange={(open) => { if (!open) close(); }}>
        <AlertDialog.Content maxWidth="480px">
          <AlertDialog.Title>Delete {node.kind} {node.node_id}?</AlertDialog.Title>
          <AlertDialog.Description size="2">
            Its config and history go with it. A node that still has children cannot be deleted.
          </AlertDialog.Description>
          <ErrorCallout error={change.error} title="Delete failed" />
          <Flex gap="3" mt="4" justify="end">
            <AlertDialog.Cancel><Button variant="soft" color="gray">Cancel</Button></AlertDialog.Cancel>
            <Button color="red" loading={change.isPending} onClick={() => change.mutate()}>Delete</Button>
          </Flex>
        </AlertDialog.Content>
      </AlertDialog.Root>
    );
  }
  const targets = moveTargets(nodes, node.node_id);
  return (
    <Dialog.Root open onOpenChange={(open) => { if (!open) close(); }}>
      <Dialog.Content maxWidth="480px">
        <Dialog.Title>{acting.mode === 'rename' ? 'Rename' : 'Move'} {node.node_id}</Dialog.Title>
        <Dialog.Description size="2" mb="3">
          {acting.mode === 'rename' ? 'The display name; the id stays.' : 'Its new parent: the org or a unit.'}
        </Dialog.Description>
        <form onSubmit={(e) => { e.preventDefault(); change.mutate(); }}>
          {acting.mode === 'rename' ? (
            <TextField.Root aria-label="New name" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
          ) : (
            <Select.Root value={value} onValueChange={setValue}>
              <Select.Trigger aria-label="New parent" />
              <Select.Content>
                {targets.map((t) => <Select.Item key={t.node_id} value={t.node_id}>{t.node_id}</Select.Item>)}
              </Select.Content>
            </Select.Root>
          )}
          <ErrorCallout error={change.error} title={acting.mode === 'rename' ? 'Rename failed' : 'Move failed'} />
          <Flex gap="3" mt="4" justify="end">
            <Dialog.Close><Button type="button" variant="soft" color="gray">Cancel</Button></Dialog.Close>
            <Button type="submit" loading={change.isPending}>Save</Button>
          </Flex>
        </form>
      </Dialog.Content>
    </Dialog.Root>
  );
}
