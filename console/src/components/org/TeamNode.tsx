// A team token sees its own team only (GET /api/v1/orgs/{org}/nodes/{team}).
import { Badge, Card, DataList, Heading, Text } from '@radix-ui/themes';
import { useQuery } from '@tanstack/react-query';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { useSession } from '@/lib/session';
import type { OrgNode } from '@/lib/tree';

export function TeamNode({ org, team }: { org: string; team: string }) {
  const { api } = useSession();
  const node = useQuery({
    queryKey: ['node', org, team],
    queryFn: () => api.get<OrgNode & { children: string[] }>(`/api/v1/orgs/${seg(org)}/nodes/${seg(team)}`),
  });
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Your team</Heading>
      <ErrorCallout error={node.error} title="Reading your team failed" />
      {node.data ? (
        <DataList.Root>
          <DataList.Item><DataList.Label>Team</DataList.Label><DataList.Value><code>{node.data.node_id}</code></DataList.Value></DataList.Item>
          <DataList.Item><DataList.Label>Name</DataList.Label><DataList.Value>{node.data.name}</DataList.Value></DataList.Item>
          <DataList.Item><DataList.Label>Kind</DataList.Label><DataList.Value><Badge>{node.data.kind}</Badge></DataList.Value></DataList.Item>
          <DataList.Item><DataList.Label>Path</DataList.Label><DataList.Value>{node.data.path.join(' → ')}</DataList.Value></DataList.Item>
        </DataList.Root>
      ) : <Text color="gray">{node.isLoading ? 'Loading…' : null}</Text>}
      <Text as="p" size="2" color="gray" mt="3">A team token sees its own team; the rest of the tree is for org admins.</Text>
    </Card>
  );
}
