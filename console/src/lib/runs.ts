// The runs API's shapes (docs/api.md "Agent runs") and the filters of the runs list, kept in the
// page's query string so a filtered view can be bookmarked and shared (never the token: only filters).

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const TERMINAL: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];
export const SOURCES = ['slack', 'api', 'pagerduty', 'alertmanager', 'grafana', 'incidentio', 'github',
                        'schedule', 'demo'] as const;

export type RunEvent = { seq: number; at: string | null; kind: string; data: Record<string, unknown> };
export type ToolCall = { agent: string; tool: string; arguments: Record<string, unknown>; status: string;
                         started_at: string | null; finished_at: string | null; result_size: number;
                         error: string | null };
export type Approval = { approval_id: string; kind: 'tool_call' | 'action'; tool: string;
                         arguments: Record<string, unknown>; status: string; requested_at: string | null;
                         decided_at: string | null; decided_by: string | null };
export type Evidence = { kind: string; source?: string; quote: string; at?: string | null };
export type RootCause = { entity: string; description: string; confidence: number; evidence?: Evidence[] };
export type ProposedAction = { id: string; kind: string; target: string; effect: string; tool: string | null;
                               arguments?: Record<string, unknown> };
export type Rca = { summary: string; root_causes?: RootCause[]; affected_services?: string[];
                    recommended_actions?: string[]; notes?: string[]; no_incident?: boolean;
                    proposed_actions?: ProposedAction[]; timeline?: { at: string | null; event: string }[] };
export type RunSummary = { run_id: string; status: RunStatus; org: string; team: string; kind: string;
                           source: string; trigger: { title?: string; text?: string; services?: string[] };
                           created_at: string | null; started_at: string | null; finished_at: string | null;
                           error: string | null; parent_run_id: string | null };
export type RunDetail = RunSummary & { result?: Rca; events: RunEvent[]; tool_calls: ToolCall[];
                                       approvals: Approval[] };

export const isTerminal = (s: string | undefined): boolean => TERMINAL.includes(s as RunStatus);

export const RANGES = { '1h': 3600, '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 } as const;
export type Range = keyof typeof RANGES;

export type RunFilters = { team: string; status: RunStatus | ''; source: string; range: Range | '' };
export const NO_FILTERS: RunFilters = { team: '', status: '', source: '', range: '' };

type QueryValue = string | string[] | undefined;
const one = (v: QueryValue): string => (Array.isArray(v) ? v[0] ?? '' : v ?? '').trim();
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;   // team ids and sources: anything else is dropped, not sent

/** The filters in a page query (unknown or malformed values are ignored). */
export function filtersFromQuery(query: Record<string, QueryValue>): RunFilters {
  const status = one(query.status);
  const range = one(query.range);
  const team = one(query.team);
  const source = one(query.source);
  return {
    team: ID.test(team) ? team : '',
    status: RUN_STATUSES.includes(status as RunStatus) ? (status as RunStatus) : '',
    source: ID.test(source) ? source : '',
    range: range in RANGES ? (range as Range) : '',
  };
}

/** The page query for `filters` (empty ones left out, so the default view has a bare URL). */
export function filtersToQuery(filters: RunFilters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(filters)) if (v) out[k] = v;
  return out;
}

/** The API query (GET /api/v1/agent/runs) for `filters`; `now` fixes the time range's end. */
export function filtersToApi(filters: RunFilters, org: string | null, now: Date = new Date()): Record<string, string> {
  const out: Record<string, string> = {};
  if (org) out.org = org;
  if (filters.team) out.team = filters.team;
  if (filters.status) out.status = filters.status;
  if (filters.source) out.source = filters.source;
  if (filters.range) out.since = new Date(now.getTime() - RANGES[filters.range] * 1000).toISOString();
  return out;
}

export function runTitle(run: Pick<RunSummary, 'trigger' | 'run_id'>): string {
  const t = run.trigger ?? {};
  return (t.title || (t.text ?? '').split('\n')[0] || run.run_id).slice(0, 200);
}

/** "1.2 s", "3 min 4 s"; '—' when either end is missing. */
export function duration(from: string | null | undefined, to: string | null | undefined): string {
  if (!from || !to) return '—';
  const s = (new Date(to).getTime() - new Date(from).getTime()) / 1000;
  return seconds(s);
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');
