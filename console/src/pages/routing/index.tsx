// Routing claims of a team, with conflicts explained.
import { Heading, Text } from '@radix-ui/themes';

import { NodePicker } from '@/components/NodePicker';
import { RoutingClaims } from '@/components/routing/RoutingClaims';

export default function RoutingPage() {
  return (
    <>
      <Heading as="h1" size="6" mb="2">Routing claims</Heading>
      <Text as="p" size="2" color="gray" mb="3">
        An alert, webhook or Slack message routes to the team that claims one of its identifiers. Each
        identifier belongs to one team across the platform.
      </Text>
      <NodePicker teamsOnly>{({ org, node }) => <RoutingClaims org={org} node={node} />}</NodePicker>
    </>
  );
}
