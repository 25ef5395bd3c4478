// What a refused config write says beyond its message: every invalid field, the lock that refused it,
// or the routing claims another team holds (the owner only when this token may know it).
import { Code, Text } from '@radix-ui/themes';

import { ApiError } from '@/lib/api';

type FieldProblem = { path: string; message: string };
type Conflict = { kind: string; value: string; owner_org_id: string | null; owner_team_node_id: string | null;
                  claimed_elsewhere?: boolean };

export function conflictOwner(c: Conflict): string {
  return c.owner_team_node_id ? `team ${c.owner_team_node_id} (org ${c.owner_org_id})` : 'another tenant (claimed elsewhere)';
}

export function ApiErrorDetails({ error }: { error: unknown }) {
  if (!(error instanceof ApiError) || typeof error.details !== 'object' || error.details === null) return null;
  const d = error.details as { errors?: FieldProblem[]; locked_path?: string; locked_by?: string;
                               conflicts?: Conflict[] };
  if (Array.isArray(d.errors) && d.errors.length) {
    return (
      <ul aria-label="Problems">
        {d.errors.map((p) => <li key={`${p.path}:${p.message}`}><Code>{p.path}</Code>: {p.message}</li>)}
      </ul>
    );
  }
  if (d.locked_path) {
    return <Text as="p" size="2"><Code>{d.locked_path}</Code> is locked by <strong>{d.locked_by}</strong>; ask its admin.</Text>;
  }
  if (Array.isArray(d.conflicts) && d.conflicts.length) {
    return (
      <ul aria-label="Routing conflicts">
        {d.conflicts.map((c) => <li key={`${c.kind}:${c.value}`}><Code>{c.kind} {c.value}</Code> is held by {conflictOwner(c)}</li>)}
      </ul>
    );
  }
  return null;
}
