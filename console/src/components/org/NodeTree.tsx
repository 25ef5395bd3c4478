// An org's tree (org → units → teams) for an org admin: create, rename, move, delete. Every change
// is the API's to accept; its error (cycle, duplicate id, children left) is shown as it said it.
import { Badge, Button, Card, Flex, Heading, Select, Table, Text, TextField } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Controller, useForm } from 'react-hook-form';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { useSession } from '@/lib/session';
import { buildTree, flatten, type OrgNode } from '@/lib/tree';

import { NodeActions } from './NodeActions';

type NewNode = { node_id: string; kind: 'unit' | 'team'; parent_id: string; name: string };

export function useNodes(org: string) {
  const { api } = useSession();
  return useQuery({
    queryKey: ['nodes', org],
    queryFn: () => api.listAll<OrgNode>(`/api/v1/orgs/${seg(org)}/nodes`),
  });
}

export function NodeTree({ org }: { org: string }) {
  const { api } = useSession();
  const nodes = useNodes(org);
  const queryClient = useQueryClient();
  const [acting, setActing] = useState<{ node: OrgNode; mode: 'rename' | 'move' | 'delete' } | null>(null);
  const form = useForm<NewNode>({ defaultValues: { node_id: '', kind: 'team', parent_id: org, name: '' } });
  const create = useMutation({
    mutationFn: (v: NewNode) => api.post<OrgNode>(`/api/v1/orgs/${seg(org)}/nodes`, {
      node_id: v.node_id, kind: v.kind, parent_id: v.parent_id === org ? null : v.parent_id, name: v.name || null,
    }),
    onSuccess: async () => {
      form.reset({ node_id: '', kind: 'team', parent_id: form.getValues('parent_id'), name: '' });
      await queryClient.invalidateQueries({ queryKey: ['nodes', org] });
    },
  });
  const list = nodes.data ?? [];
  const rows = flatten(buildTree(list));
  const parents = list.filter((n) => n.kind !== 'team');
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Tree of {org}</Heading>
      <ErrorCallout error={nodes.error} title="Listing the tree failed" />
      {nodes.isLoading ? <Text color="gray">Loading…</Text> : null}
      <Table.Root variant="surface" size="1">
        <caption className="ifx-sr-only">Tree of {org}</caption>
        <Table.Header>
          <Table.Row>
            <Table.ColumnHeaderCell>Node</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Kind</Table.ColumnHeaderCell>
            <Table.ColumnHeaderCell>Name</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Actions</Table.ColumnHeaderCell>
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {rows.map(({ node, depth }) => (
            <Table.Row key={node.node_id} data-node={node.node_id}>
              <Table.RowHeaderCell className={`ifx-depth-${Math.min(depth, 8)}`}><code>{node.node_id}</code></Table.RowHeaderCell>
              <Table.Cell><Badge color={node.kind === 'team' ? 'blue' : node.kind === 'unit' ? 'green' : 'gray'}>{node.kind}</Badge></Table.Cell>
              <Table.Cell>{node.name}</Table.Cell>
              <Table.Cell>
                {node.kind === 'org' ? null : (
                  <Flex gap="2">
                    <Button size="1" variant="soft" onClick={() => setActing({ node, mode: 'rename' })}
                      aria-label={`Rename ${node.node_id}`}>Rename</Button>
                    <Button size="1" variant="soft" onClick={() => setActing({ node, mode: 'move' })}
                      aria-label={`Move ${node.node_id}`}>Move</Button>
                    <Button size="1" variant="soft" color="red" onClick={() => setActing({ node, mode: 'delete' })}
                      aria-label={`Delete ${node.node_id}`}>Delete</Button>
                  </Flex>
                )}
              </Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
      <Heading as="h3" size="3" mt="4" mb="2">Add a unit or team</Heading>
      <form onSubmit={form.handleSubmit((v) => create.mutate(v))} aria-label="Add a unit or team">
        <Flex className="ifx-form-row">
          <label>Id<TextField.Root placeholder="payments" {...form.register('node_id', { required: true })} /></label>
          <label>Name<TextField.Root placeholder="Payments" {...form.register('name')} /></label>
          <label>Kind
            <Controller control={form.control} name="kind" render={({ field }) => (
              <Select.Root value={field.value} onValueChange={field.onChange}>
                <Select.Trigger aria-label="Kind" />
                <Select.Content>
                  <Select.Item value="team">team</Select.Item>
                  <Select.Item value="unit">unit</Select.Item>
                </Select.Content>
              </Select.Root>
            )} />
          </label>
          <label>Under
            <Controller control={form.control} name="parent_id" render={({ field }) => (
              <Select.Root value={field.value} onValueChange={field.onChange}>
                <Select.Trigger aria-label="Parent" />
                <Select.Content>
                  {parents.map((p) => <Select.Item key={p.node_id} value={p.node_id}>{p.node_id}</Select.Item>)}
                  {parents.length === 0 ? <Select.Item value={org}>{org}</Select.Item> : null}
                </Select.Content>
              </Select.Root>
            )} />
          </label>
          <Button type="submit" loading={create.isPending}>Add</Button>
        </Flex>
      </form>
      <ErrorCallout error={create.error} title="Adding failed" />
      <NodeActions org={org} nodes={list} acting={acting} onDone={() => setActing(null)} />
    </Card>
  );
}
