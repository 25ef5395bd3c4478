// The live part of a run page: sub-agents, tool calls with timings, and every event in order.
import { Badge, Card, Flex, Heading, Table, Text } from '@radix-ui/themes';

import { StatusBadge } from '@/components/StatusBadge';
import { duration, seconds, type ToolCall } from '@/lib/runs';
import type { Timeline } from '@/lib/timeline';

const time = (iso: string | null) => (iso ? new Date(iso).toLocaleTimeString() : '—');

export function RunTimeline({ timeline, toolCalls, live }: { timeline: Timeline; toolCalls: ToolCall[]; live: boolean }) {
  return (
    <Flex direction="column" gap="3">
      <Card>
        <Flex justify="between" align="center" mb="2">
          <Heading as="h2" size="4">Sub-agents</Heading>
          {live ? <Badge highContrast color="blue" data-testid="live">live</Badge> : null}
        </Flex>
        {timeline.agents.length === 0 ? <Text size="2" color="gray">No sub-agent has started yet.</Text> : (
          <Table.Root size="1">
            <caption className="ifx-sr-only">Sub-agents</caption>
            <Table.Header><Table.Row>
              <Table.ColumnHeaderCell>Agent</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Status</Table.ColumnHeaderCell>
              <Table.ColumnHeaderCell>Tool calls</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Took</Table.ColumnHeaderCell>
            </Table.Row></Table.Header>
            <Table.Body>
              {timeline.agents.map((a) => (
                <Table.Row key={a.name} data-testid="agent-row">
                  <Table.Cell>{a.name}</Table.Cell><Table.Cell><StatusBadge status={a.status} /></Table.Cell>
                  <Table.Cell>{a.toolCount ?? '—'}</Table.Cell><Table.Cell>{seconds(a.durationS)}</Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        )}
      </Card>
      <Card>
        <Heading as="h2" size="4" mb="2">Tool calls</Heading>
        {toolCalls.length === 0 ? <Text size="2" color="gray">No tool call yet.</Text> : (
          <Table.Root size="1">
            <caption className="ifx-sr-only">Tool calls</caption>
            <Table.Header><Table.Row>
              <Table.ColumnHeaderCell>Started</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Agent</Table.ColumnHeaderCell>
              <Table.ColumnHeaderCell>Tool</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Status</Table.ColumnHeaderCell>
              <Table.ColumnHeaderCell>Took</Table.ColumnHeaderCell><Table.ColumnHeaderCell>Result</Table.ColumnHeaderCell>
            </Table.Row></Table.Header>
            <Table.Body>
              {toolCalls.map((t, i) => (
                <Table.Row key={`${t.started_at}-${t.tool}-${i}`} data-testid="tool-call-row">
                  <Table.Cell>{time(t.started_at)}</Table.Cell><Table.Cell>{t.agent}</Table.Cell>
                  <Table.Cell><code>{t.tool}</code></Table.Cell><Table.Cell><StatusBadge status={t.status} /></Table.Cell>
                  <Table.Cell>{duration(t.started_at, t.finished_at)}</Table.Cell>
                  <Table.Cell>{t.error ? <Text highContrast color="red" size="1">{t.error.slice(0, 160)}</Text>
                    : <Text size="1">{t.result_size} bytes</Text>}</Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        )}
      </Card>
      <Card>
        <Heading as="h2" size="4" mb="2">Timeline</Heading>
        <ol className="ifx-timeline" aria-label="Run events" tabIndex={0}>
          {timeline.items.map((item) => (
            <li key={item.seq} data-kind={item.kind}>
              <Text size="1" color="gray">{time(item.at)}</Text>{' '}
              <Text size="2" weight="medium">{item.label}</Text>
              {item.detail ? <Text size="2" color="gray"> — {item.detail}</Text> : null}
            </li>
          ))}
        </ol>
      </Card>
    </Flex>
  );
}
