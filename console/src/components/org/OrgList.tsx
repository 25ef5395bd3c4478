// Global admin: every org, and creating one (POST /api/v1/orgs).
import { Button, Card, Flex, Heading, TextField } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useForm } from 'react-hook-form';

import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { type Org, useOrgs } from '@/components/OrgPicker';
import { useSession } from '@/lib/session';

const col = createColumnHelper<Org>();

export function OrgList() {
  const { api, org, setOrg } = useSession();
  const orgs = useOrgs();
  const queryClient = useQueryClient();
  const form = useForm<Org>({ defaultValues: { org_id: '', name: '' } });
  const create = useMutation({
    mutationFn: (body: Org) => api.post<Org>('/api/v1/orgs', body),
    onSuccess: async (created) => {
      form.reset();
      await queryClient.invalidateQueries({ queryKey: ['orgs'] });
      setOrg(created.org_id);
    },
  });
  const columns = [
    col.accessor('org_id', { header: 'Org id' }),
    col.accessor('name', { header: 'Name' }),
    col.display({
      id: 'open', header: '',
      cell: ({ row }) => (
        <Button size="1" variant={row.original.org_id === org ? 'solid' : 'soft'}
          onClick={() => setOrg(row.original.org_id)} aria-label={`Show org ${row.original.org_id}`}>
          {row.original.org_id === org ? 'Shown' : 'Show'}
        </Button>
      ),
    }),
  ];
  return (
    <Card mb="4">
      <Heading as="h2" size="4" mb="2">Orgs</Heading>
      <ErrorCallout error={orgs.error} title="Listing orgs failed" />
      <DataTable data={orgs.data ?? []} columns={columns} caption="Orgs" rowKey={(o) => o.org_id}
        empty={orgs.isLoading ? 'Loading…' : 'No org yet: create one below.'} />
      <form onSubmit={form.handleSubmit((v) => create.mutate(v))} aria-label="Create an org">
        <Flex className="ifx-form-row" mt="3">
          <label>Org id<TextField.Root placeholder="acme" {...form.register('org_id', { required: true })} /></label>
          <label>Name<TextField.Root placeholder="Acme Inc." {...form.register('name', { required: true })} /></label>
          <Button type="submit" loading={create.isPending}>Create org</Button>
        </Flex>
      </form>
      <ErrorCallout error={create.error} title="Creating the org failed" />
    </Card>
  );
}
