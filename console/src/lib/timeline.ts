// The live timeline of a run: a reducer over its events (GET /runs/{id} first, then the SSE stream
// resumed with ?after=<last seq>). Events are applied once each, in seq order, whatever the overlap
// between the snapshot and the stream; the reducer is pure, so the page and the unit tests share it.
import type { RunEvent } from './runs';

export type AgentState = { name: string; status: string; toolCount: number | null; durationS: number | null;
                           firstAt: string | null; lastAt: string | null };
export type ApprovalState = { id: string; tool: string | null; status: string; arguments: unknown;
                              kind: 'tool_call' | 'action'; target?: string; effect?: string; by?: string };
export type TimelineItem = { seq: number; at: string | null; kind: string; label: string; detail?: string };

export type Timeline = {
  lastSeq: number;
  status: string | null;
  ended: boolean;
  items: TimelineItem[];
  agents: AgentState[];
  approvals: ApprovalState[];
  rerunOf: string | null;
};

export const EMPTY_TIMELINE: Timeline = { lastSeq: 0, status: null, ended: false, items: [], agents: [],
                                          approvals: [], rerunOf: null };

export type TimelineAction =
  | { type: 'events'; events: RunEvent[] }
  | { type: 'end'; status: string }
  | { type: 'reset' };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function describe(ev: RunEvent): TimelineItem {
  const d = ev.data ?? {};
  const base = { seq: ev.seq, at: ev.at, kind: ev.kind };
  switch (ev.kind) {
    case 'status':
      return { ...base, label: `status: ${str(d.status) ?? '?'}`,
               detail: str(d.reason) ?? (d.rerun_of ? `rerun of ${str(d.rerun_of)}` : undefined) };
    case 'phase':
      return { ...base, label: `phase: ${str(d.phase) ?? '?'}`,
               detail: Array.isArray(d.root_causes) ? `root causes: ${d.root_causes.map(String).join(', ')}`
                 : str(d.planner) ? `planner ${str(d.planner)}` : undefined };
    case 'agent': {
      const dur = num(d.duration_s);
      return { ...base, label: `${str(d.agent) ?? 'agent'} ${str(d.status) ?? ''}`.trim(),
               detail: [num(d.tool_count) !== null ? `${d.tool_count} tool calls` : null,
                        dur !== null ? `${dur.toFixed(1)} s` : null].filter(Boolean).join(', ') || undefined };
    }
    case 'approval':
      return { ...base, label: `${d.action_id ? 'proposed fix' : 'approval'}: ${str(d.tool) ?? str(d.kind) ?? '?'}`,
               detail: str(d.effect) ?? str(d.status) };
    case 'turn':
      return { ...base, label: 'thread reply', detail: str(d.text)?.slice(0, 200) };
    case 'absorbed':
      return { ...base, label: `absorbed alert: ${str(d.title) ?? ''}`.trim() };
    default:
      return { ...base, label: ev.kind,
               detail: d.approval ? `${str(d.approval)} ${str(d.decision) ?? ''}`.trim()
                 : str(d.cancel_requested_by) ? `cancel requested by ${str(d.cancel_requested_by)}` : undefined };
  }
}

function applyOne(state: Timeline, ev: RunEvent): Timeline {
  const d = ev.data ?? {};
  let { status, agents, approvals, rerunOf } = state;
  if (ev.kind === 'status' && str(d.status)) {
    status = str(d.status)!;
    if (d.rerun_of && !rerunOf) rerunOf = str(d.rerun_of) ?? null;
  }
  if (ev.kind === 'agent' && str(d.agent)) {
    const name = str(d.agent)!;
    const prev = agents.find((a) => a.name === name);
    const next: AgentState = {
      name, status: str(d.status) ?? prev?.status ?? '?',
      toolCount: num(d.tool_count) ?? prev?.toolCount ?? null,
      durationS: num(d.duration_s) ?? prev?.durationS ?? null,
      firstAt: prev?.firstAt ?? ev.at, lastAt: ev.at,
    };
    agents = prev ? agents.map((a) => (a.name === name ? next : a)) : [...agents, next];
  }
  if (ev.kind === 'approval') {
    const id = str(d.approval_id) ?? str(d.action_id);
    if (id && !approvals.some((a) => a.id === id)) {
      const proposed = Boolean(d.action_id);
      approvals = [...approvals, {
        id, tool: str(d.tool) ?? null, arguments: d.arguments ?? {}, kind: proposed ? 'action' : 'tool_call',
        status: proposed ? (d.tool ? 'pending' : 'not_runnable') : str(d.status) ?? 'pending',
        target: str(d.target), effect: str(d.effect),
      }];
    }
  }
  // A decision (approvals.decide) or an executed fix (actions.py) is a note naming the approval.
  const decided = str(d.approval) ?? str(d.action);
  const outcome = str(d.decision) ?? (ev.kind === 'note' && d.action ? str(d.status) : undefined);
  if (decided && outcome) {
    approvals = approvals.map((a) => (a.id === decided ? { ...a, status: outcome, by: str(d.by) ?? a.by } : a));
  }
  return { ...state, lastSeq: ev.seq, status, agents, approvals, rerunOf, items: [...state.items, describe(ev)] };
}

export function timelineReducer(state: Timeline, action: TimelineAction): Timeline {
  switch (action.type) {
    case 'reset':
      return EMPTY_TIMELINE;
    case 'end':
      return { ...state, ended: true, status: action.status || state.status };
    case 'events': {
      const fresh = [...action.events].filter((e) => e.seq > state.lastSeq).sort((a, b) => a.seq - b.seq);
      let next = state;
      for (const ev of fresh) if (ev.seq > next.lastSeq) next = applyOne(next, ev);
      return next;
    }
    default:
      return state;
  }
}
