// An org's audit log, newest first: filter by actor, action (prefix with *), node and time range;
// "Load more" follows the cursor. Every entry's diff is masked by the API.
import { Button, Card, Code, Flex, Heading, Text, TextField } from '@radix-ui/themes';
import { createColumnHelper } from '@tanstack/react-table';
import { type FormEvent, useState } from 'react';

import css from '@/components/config/config.module.css';
import { DataTable } from '@/components/DataTable';
import { ErrorCallout } from '@/components/ErrorCallout';
import { type Query, seg } from '@/lib/api';
import { usePagedList } from '@/lib/queries';

export type AuditEntry = { id: number; at: string; actor: string; action: string; target: string; diff: unknown };
export type AuditFilters = { actor: string; action: string; node: string; since: string; until: string };

export const NO_FILTERS: AuditFilters = { actor: '', action: '', node: '', since: '', until: '' };

/** The query string for `filters` (empty fields left out; local datetime inputs sent as UTC ISO). */
export function auditQuery(filters: AuditFilters): Query {
  const iso = (local: string) => (local ? new Date(local).toISOString() : undefined);
  return { actor: filters.actor.trim() || undefined, action: filters.action.trim() || undefined,
           node: filters.node.trim() || undefined, since: iso(filters.since), until: iso(filters.until) };
}

const col = createColumnHelper<AuditEntry>();
const FIELDS: Array<[keyof AuditFilters, string, string, string]> = [
  ['actor', 'Actor', 'admin, token:tok_…', 'text'], ['action', 'Action', 'config.* or token.issue', 'text'],
  ['node', 'Node', 'payments', 'text'], ['since', 'Since', '', 'datetime-local'], ['until', 'Until', '', 'datetime-local'],
];

export function AuditLog({ org }: { org: string }) {
  const [draft, setDraft] = useState<AuditFilters>(NO_FILTERS);
  const [filters, setFilters] = useState<AuditFilters>(NO_FILTERS);
  const list = usePagedList<AuditEntry>(['audit', org, filters], `/api/v1/orgs/${seg(org)}/audit`, auditQuery(filters),
                                        { limit: 50 });
  const columns = [
    col.accessor('at', { header: 'When', cell: (c) => new Date(c.getValue()).toLocaleString() }),
    col.accessor('actor', { header: 'Actor', cell: (c) => <Code variant="ghost">{c.getValue()}</Code> }),
    col.accessor('action', { header: 'Action' }),
    col.accessor('target', { header: 'Target', cell: (c) => <Code variant="ghost">{c.getValue()}</Code> }),
    col.accessor((e) => JSON.stringify(e.diff), { id: 'diff', header: 'Details', enableSorting: false,
                                                 cell: (c) => <Text className={css.value}>{c.getValue()}</Text> }),
  ];
  const apply = (e: FormEvent) => { e.preventDefault(); setFilters(draft); };
  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Audit log of {org}</Heading>
      <form className={css.filters} onSubmit={apply} aria-label="Audit filters">
        {FIELDS.map(([k, label, hint, type]) => (
          <label key={k}>
            {label}
            <TextField.Root type={type as 'text'} aria-label={label} placeholder={hint} value={draft[k]}
              onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} />
          </label>
        ))}
        <Flex gap="2">
          <Button type="submit">Filter</Button>
          <Button type="button" variant="soft" color="gray" onClick={() => { setDraft(NO_FILTERS); setFilters(NO_FILTERS); }}>
            Clear
          </Button>
        </Flex>
      </form>
      <ErrorCallout error={list.error} title="Reading the audit log failed" />
      <DataTable data={list.items} columns={columns} caption={`Audit log of ${org}`}
        rowKey={(e) => String(e.id)} empty={list.isLoading ? 'Loading…' : 'No entry matches.'}
        hasMore={list.hasMore} loadingMore={list.isFetchingNextPage} onMore={list.more} />
    </Card>
  );
}
