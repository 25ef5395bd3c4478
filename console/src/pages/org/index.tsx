import { Callout, Heading } from '@radix-ui/themes';

import { NodeTree } from '@/components/org/NodeTree';
import { OrgList } from '@/components/org/OrgList';
import { TeamNode } from '@/components/org/TeamNode';
import { isAdmin } from '@/lib/nav';
import { useSession } from '@/lib/session';

export default function OrgPage() {
  const { identity, org } = useSession();
  return (
    <>
      <Heading as="h1" size="6" mb="3">Org tree</Heading>
      {identity.auth_kind === 'global_admin' ? <OrgList /> : null}
      {isAdmin(identity.auth_kind) && org ? <NodeTree org={org} /> : null}
      {identity.auth_kind === 'global_admin' && !org ? (
        <Callout.Root color="gray"><Callout.Text>Pick or create an org to see its tree.</Callout.Text></Callout.Root>
      ) : null}
      {!isAdmin(identity.auth_kind) && org && identity.team_node_id ? (
        <TeamNode org={org} team={identity.team_node_id} />
      ) : null}
    </>
  );
}
