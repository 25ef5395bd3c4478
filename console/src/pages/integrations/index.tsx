// Integrations of a node, with "Test connection".
import { Heading } from '@radix-ui/themes';

import { Integrations } from '@/components/integrations/Integrations';
import { NodePicker } from '@/components/NodePicker';

export default function IntegrationsPage() {
  return (
    <>
      <Heading as="h1" size="6" mb="3">Integrations</Heading>
      <NodePicker>{({ org, node }) => <Integrations org={org} node={node} />}</NodePicker>
    </>
  );
}
