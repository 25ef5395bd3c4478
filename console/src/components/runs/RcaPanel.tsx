// The RCA of a finished run: summary, root causes with their quoted evidence, recommendations, notes.
import { Badge, Card, Flex, Heading, Text } from '@radix-ui/themes';

import type { Rca } from '@/lib/runs';

export function RcaPanel({ rca }: { rca: Rca }) {
  return (
    <Card data-testid="rca">
      <Heading as="h2" size="4" mb="2">Root-cause analysis</Heading>
      <Text as="p" size="3" mb="3">{rca.summary}</Text>
      {rca.no_incident ? <Badge highContrast color="gray" mb="2">nothing stands out</Badge> : null}
      {(rca.root_causes ?? []).map((c, i) => (
        <Flex key={`${c.entity}-${i}`} direction="column" gap="1" mb="3">
          <Flex gap="2" align="center">
            <Heading as="h3" size="3"><code>{c.entity}</code></Heading>
            <Badge highContrast color={c.confidence >= 0.7 ? 'red' : c.confidence >= 0.4 ? 'amber' : 'gray'}>
              confidence {Math.round(c.confidence * 100)}%</Badge>
          </Flex>
          <Text size="2">{c.description}</Text>
          {(c.evidence ?? []).length ? (
            <ul className="ifx-evidence" aria-label={`Evidence for ${c.entity}`}>
              {(c.evidence ?? []).map((e, j) => (
                <li key={j}><Badge highContrast size="1" color="gray">{e.kind}</Badge>{' '}
                  {e.source ? <Text size="1" color="gray">{e.source}: </Text> : null}
                  <code>{e.quote}</code></li>
              ))}
            </ul>
          ) : null}
        </Flex>
      ))}
      {(rca.recommended_actions ?? []).length ? (
        <>
          <Heading as="h3" size="3" mt="2">Recommended</Heading>
          <ul>{(rca.recommended_actions ?? []).map((a, i) => <li key={i}><Text size="2">{a}</Text></li>)}</ul>
        </>
      ) : null}
      {(rca.notes ?? []).map((n, i) => <Text highContrast key={i} as="p" size="1" color="amber">{n}</Text>)}
    </Card>
  );
}
