// Which node a per-node page (config, routing, integrations) looks at: `?node=` in the URL (a static
// export has no dynamic routes), by default the token's own team or the org root. Admins pick from the
// org's nodes; a team token is pinned to its team (the API would refuse any other).
import { Callout, Flex, Select, Text } from '@radix-ui/themes';
import { useQuery } from '@tanstack/react-query';
import { useRouter } from 'next/router';
import type { ReactNode } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { isAdmin } from '@/lib/nav';
import { useSession } from '@/lib/session';
import type { OrgNode } from '@/lib/tree';

export type NodeSelection = { org: string; node: string; kind: OrgNode['kind'] | null };

export function useNodeSelection(): { org: string | null; node: string | null; setNode(node: string): void } {
  const { identity, org } = useSession();
  const router = useRouter();
  const asked = typeof router.query.node === 'string' ? router.query.node : null;
  const node = identity.team_node_id ?? asked ?? org;
  return {
    org,
    node,
    setNode: (next) => { void router.replace({ pathname: router.pathname, query: { ...router.query, node: next } }); },
  };
}

export function useOrgNodes(org: string | null) {
  const { api, identity } = useSession();
  return useQuery({
    queryKey: ['nodes', org],
    queryFn: () => api.listAll<OrgNode>(`/api/v1/orgs/${seg(org ?? '')}/nodes`),
    enabled: Boolean(org) && isAdmin(identity.auth_kind),
  });
}

/** The node picker, then `children(selection)` once an org and a node are known. `teamsOnly` offers
 * only team nodes (routing claims belong to teams). */
export function NodePicker({ children, teamsOnly = false }: { children: (s: NodeSelection) => ReactNode;
                                                              teamsOnly?: boolean }) {
  const { identity } = useSession();
  const { org, node, setNode } = useNodeSelection();
  const nodes = useOrgNodes(org);
  if (!org) {
    return <Callout.Root color="gray"><Callout.Text>Pick an org (top bar) first.</Callout.Text></Callout.Root>;
  }
  if (!isAdmin(identity.auth_kind)) {
    return <>{node ? children({ org, node, kind: 'team' }) : null}</>;
  }
  const offered = (nodes.data ?? []).filter((n) => !teamsOnly || n.kind === 'team');
  const chosen = offered.find((n) => n.node_id === node) ?? (teamsOnly ? offered[0] : undefined);
  const current = chosen?.node_id ?? (teamsOnly ? null : node);
  return (
    <>
      <Flex gap="2" align="center" mb="3">
        <Text as="label" size="2" htmlFor="node-picker">Node</Text>
        <Select.Root value={current ?? ''} onValueChange={setNode}>
          <Select.Trigger id="node-picker" aria-label="Node" placeholder="Pick a node" />
          <Select.Content>
            {offered.map((n) => (
              <Select.Item key={n.node_id} value={n.node_id}>
                {'· '.repeat(Math.max(0, n.depth))}{n.name || n.node_id} ({n.kind})
              </Select.Item>
            ))}
          </Select.Content>
        </Select.Root>
      </Flex>
      <ErrorCallout error={nodes.error} title="Listing the org's nodes failed" />
      {teamsOnly && nodes.isSuccess && offered.length === 0
        ? <Callout.Root color="gray"><Callout.Text>This org has no team yet.</Callout.Text></Callout.Root> : null}
      {current ? children({ org, node: current, kind: chosen?.kind ?? null }) : null}
    </>
  );
}
