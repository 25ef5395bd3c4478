// A global admin looks at one org at a time; everyone else is pinned to their token's org.
import { Select, Text } from '@radix-ui/themes';
import { useQuery } from '@tanstack/react-query';

import { useSession } from '@/lib/session';

export type Org = { org_id: string; name: string };

export function useOrgs(enabled = true) {
  const { api, identity } = useSession();
  return useQuery({
    queryKey: ['orgs'],
    queryFn: () => api.listAll<Org>('/api/v1/orgs'),
    enabled: enabled && identity.auth_kind === 'global_admin',
  });
}

export function OrgPicker() {
  const { identity, org, setOrg } = useSession();
  const orgs = useOrgs();
  if (identity.auth_kind !== 'global_admin') return <Text size="2">org <strong>{org}</strong></Text>;
  return (
    <Select.Root value={org ?? ''} onValueChange={(v) => setOrg(v || null)}>
      <Select.Trigger placeholder="Pick an org" aria-label="Org" />
      <Select.Content>
        {(orgs.data ?? []).map((o) => <Select.Item key={o.org_id} value={o.org_id}>{o.name} ({o.org_id})</Select.Item>)}
      </Select.Content>
    </Select.Root>
  );
}
