// Sandbox sessions (docs/sandbox.md): the shapes, the transcript as chat lines, and a reducer for one
// streamed turn (POST /sessions/{id}/messages answers thought / tool_start / tool_end / approval …
// then one of result / error / interrupted).

export type SandboxSession = { session_id: string; org_id: string; team_id: string; status: string; title: string;
                               created_at: string; last_active_at: string; expires_at: string; ttl_s: number;
                               turns: number; busy: boolean; end_reason: string | null };
export type SandboxDetail = SandboxSession & {
  transcript: { role: string; content: unknown; seq: number; created_at: string }[];
  pending_approvals: { approval_id: string; tool: string; input?: unknown }[];
};

export type ChatLine =
  | { kind: 'user' | 'assistant'; text: string }
  | { kind: 'tool'; id: string; name: string; input: unknown; output?: string; isError?: boolean; durationS?: number }
  | { kind: 'approval'; id: string; tool: string; status: string }
  | { kind: 'end'; status: 'result' | 'error' | 'interrupted'; text: string };

type Block = { type?: string; text?: string; name?: string; input?: unknown; id?: string; content?: unknown;
               tool_use_id?: string; is_error?: boolean };

const blockText = (content: unknown): string => {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b: Block) => (b?.type === 'text' ? b.text ?? '' : '')).join('');
  return '';
};

/** The stored transcript (Anthropic messages) as chat lines; tool results join their tool calls. */
export function transcriptLines(transcript: SandboxDetail['transcript']): ChatLine[] {
  const out: ChatLine[] = [];
  for (const m of transcript) {
    const blocks: Block[] = Array.isArray(m.content) ? (m.content as Block[]) : [];
    for (const b of blocks) {
      if (b?.type === 'tool_result') {
        const call = out.find((l): l is Extract<ChatLine, { kind: 'tool' }> => l.kind === 'tool' && l.id === b.tool_use_id);
        if (call) { call.output = blockText(b.content); call.isError = Boolean(b.is_error); }
      }
    }
    const text = blockText(m.content);
    if (text) out.push({ kind: m.role === 'user' ? 'user' : 'assistant', text });
    for (const b of blocks) {
      if (b?.type === 'tool_use') out.push({ kind: 'tool', id: b.id ?? '', name: b.name ?? '?', input: b.input });
    }
  }
  return out;
}

/** Apply one streamed event of a turn to the lines shown under the transcript. */
export function applyTurnEvent(lines: ChatLine[], type: string, data: Record<string, unknown>): ChatLine[] {
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  switch (type) {
    case 'thought': {
      const last = lines[lines.length - 1];
      if (last && last.kind === 'assistant') return [...lines.slice(0, -1), { ...last, text: last.text + s(data.text) }];
      return [...lines, { kind: 'assistant', text: s(data.text) }];
    }
    case 'tool_start':
      return [...lines, { kind: 'tool', id: s(data.id), name: s(data.name), input: data.input }];
    case 'tool_end':
      return lines.map((l) => (l.kind === 'tool' && l.id === s(data.id)
        ? { ...l, output: s(data.output), isError: Boolean(data.is_error),
            durationS: typeof data.duration_s === 'number' ? data.duration_s : undefined } : l));
    case 'approval': {
      const id = s(data.approval_id);
      const line: ChatLine = { kind: 'approval', id, tool: s(data.tool), status: s(data.status) };
      return lines.some((l) => l.kind === 'approval' && l.id === id)
        ? lines.map((l) => (l.kind === 'approval' && l.id === id ? line : l)) : [...lines, line];
    }
    case 'result': case 'error': case 'interrupted':
      return [...lines, { kind: 'end', status: type,
                          text: type === 'result' ? '' : s(data.message) || s(data.reason) || s(data.code) }];
    default:
      return lines;
  }
}
