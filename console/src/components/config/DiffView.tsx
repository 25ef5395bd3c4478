// Leaf changes of a config version (or of an edit before it is saved): one row per path, old → new.
// Secret values arrive as "***" and are shown as such; the view never has anything else to show.
import { Badge, Code, Table, Text } from '@radix-ui/themes';

import { type Change, show } from '@/lib/configDiff';
import css from './config.module.css';

const OP_COLOR = { add: 'green', remove: 'red', replace: 'amber' } as const;

export function DiffView({ changes, caption }: { changes: Change[]; caption: string }) {
  if (changes.length === 0) return <Text size="2" color="gray">No change.</Text>;
  return (
    <Table.Root size="1" variant="surface">
      <caption className="ifx-sr-only">{caption}</caption>
      <Table.Header>
        <Table.Row>
          <Table.ColumnHeaderCell>Path</Table.ColumnHeaderCell>
          <Table.ColumnHeaderCell>Change</Table.ColumnHeaderCell>
          <Table.ColumnHeaderCell>Before</Table.ColumnHeaderCell>
          <Table.ColumnHeaderCell>After</Table.ColumnHeaderCell>
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {changes.map((c) => (
          <Table.Row key={`${c.path}:${c.op}`} data-testid="diff-row">
            <Table.Cell><Code variant="ghost">{c.path}</Code></Table.Cell>
            <Table.Cell><Badge color={OP_COLOR[c.op]}>{c.op}</Badge></Table.Cell>
            <Table.Cell><Text className={css.value}>{'old' in c ? show(c.old) : '—'}</Text></Table.Cell>
            <Table.Cell><Text className={css.value}>{'new' in c ? show(c.new) : '—'}</Text></Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table.Root>
  );
}
