// Issue an org admin token or a team token (POST /api/v1/orgs/{org}/tokens or …/teams/{team}/tokens);
// the token itself is shown once.
import { Button, Card, Flex, Heading, Select, TextField } from '@radix-ui/themes';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Controller, useForm } from 'react-hook-form';

import { ErrorCallout } from '@/components/ErrorCallout';
import { useNodes } from '@/components/org/NodeTree';
import { SecretOnce } from '@/components/SecretOnce';
import { seg } from '@/lib/api';
import { useSession } from '@/lib/session';

type Form = { scope: string; label: string; expires_h: string };
const ORG_SCOPE = '__org__';

export function IssueToken({ org }: { org: string }) {
  const { api } = useSession();
  const queryClient = useQueryClient();
  const nodes = useNodes(org);
  const [secret, setSecret] = useState<string | null>(null);
  const form = useForm<Form>({ defaultValues: { scope: ORG_SCOPE, label: '', expires_h: '' } });
  const issue = useMutation({
    mutationFn: ({ scope, label, expires_h }: Form) => {
      const hours = Number(expires_h);
      const body = { label, ...(expires_h ? { expires_in_s: Math.round(hours * 3600) } : {}) };
      const path = scope === ORG_SCOPE ? `/api/v1/orgs/${seg(org)}/tokens`
        : `/api/v1/orgs/${seg(org)}/teams/${seg(scope)}/tokens`;
      return api.post<{ token: string; token_id: string }>(path, body);
    },
    onSuccess: async (issued) => {
      setSecret(issued.token);
      form.reset({ scope: form.getValues('scope'), label: '', expires_h: '' });
      await queryClient.invalidateQueries({ queryKey: ['tokens', org] });
    },
  });
  const teams = (nodes.data ?? []).filter((n) => n.kind === 'team');
  return (
    <Card mb="4">
      <Heading as="h2" size="4" mb="2">Issue a token</Heading>
      <form onSubmit={form.handleSubmit((v) => issue.mutate(v))} aria-label="Issue a token">
        <Flex className="ifx-form-row">
          <label>For
            <Controller control={form.control} name="scope" render={({ field }) => (
              <Select.Root value={field.value} onValueChange={field.onChange}>
                <Select.Trigger aria-label="Token for" />
                <Select.Content>
                  <Select.Item value={ORG_SCOPE}>org admin of {org}</Select.Item>
                  {teams.map((t) => <Select.Item key={t.node_id} value={t.node_id}>team {t.node_id}</Select.Item>)}
                </Select.Content>
              </Select.Root>
            )} />
          </label>
          <label>Label<TextField.Root placeholder="ci-bot" {...form.register('label')} /></label>
          <label>Expires in (hours, empty: never)
            <TextField.Root inputMode="decimal" {...form.register('expires_h', {
              validate: (v) => v === '' || Number(v) > 0 || 'a positive number of hours' })} />
          </label>
          <Button type="submit" loading={issue.isPending}>Issue</Button>
        </Flex>
      </form>
      {form.formState.errors.expires_h ? <ErrorCallout error={new Error(String(form.formState.errors.expires_h.message))} /> : null}
      <ErrorCallout error={issue.error} title="Issuing failed" />
      <SecretOnce title="New token" secret={secret} onClose={() => setSecret(null)} />
    </Card>
  );
}
