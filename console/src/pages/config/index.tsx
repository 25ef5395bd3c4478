// Config: the effective config with origins and locks (everyone who may read the node), and for org
// admins the editor (merge patches, reviewed before saving) and the history with rollback.
import { Flex, Heading } from '@radix-ui/themes';

import { ConfigEditor } from '@/components/config/ConfigEditor';
import { ConfigHistory } from '@/components/config/ConfigHistory';
import { EffectiveConfig } from '@/components/config/EffectiveConfig';
import { NodePicker } from '@/components/NodePicker';
import { isAdmin } from '@/lib/nav';
import { useSession } from '@/lib/session';

export default function ConfigPage() {
  const { identity } = useSession();
  return (
    <>
      <Heading as="h1" size="6" mb="3">Config</Heading>
      <NodePicker>
        {({ org, node }) => (
          <Flex direction="column" gap="4">
            {isAdmin(identity.auth_kind) ? <ConfigEditor org={org} node={node} /> : null}
            <EffectiveConfig org={org} node={node} />
            {isAdmin(identity.auth_kind) ? <ConfigHistory org={org} node={node} /> : null}
          </Flex>
        )}
      </NodePicker>
    </>
  );
}
