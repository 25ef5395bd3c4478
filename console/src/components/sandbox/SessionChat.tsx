// One sandbox session: its transcript, a message box whose answer streams in (fetch + SSE parser:
// the token stays in a header), interrupt, delete, and the MCP calls it waits on.
import { Badge, Button, Card, Flex, Heading, Text, TextArea } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { StatusBadge } from '@/components/StatusBadge';
import { ApiError, seg } from '@/lib/api';
import { applyTurnEvent, type ChatLine, type SandboxDetail, transcriptLines } from '@/lib/sandbox';
import { useSession, useSessionState } from '@/lib/session';
import { streamSse } from '@/lib/sse';

function Line({ line }: { line: ChatLine }) {
  switch (line.kind) {
    case 'user': return <Card size="1" data-testid="chat-user"><Text size="2" className="ifx-pre"><strong>You:</strong> {line.text}</Text></Card>;
    case 'assistant': return <Card size="1" variant="surface" data-testid="chat-assistant"><Text size="2" className="ifx-pre">{line.text}</Text></Card>;
    case 'tool': return (
      <Card size="1" data-testid="chat-tool">
        <Text size="1"><Badge highContrast color="gray">tool</Badge> <code>{line.name}</code> <code>{JSON.stringify(line.input ?? {}).slice(0, 200)}</code>
          {line.durationS !== undefined ? <Text color="gray"> · {line.durationS.toFixed(2)} s</Text> : null}
          {line.output === undefined ? <Text highContrast color="blue"> · running…</Text> : null}</Text>
        {line.output !== undefined ? <Text as="div" size="1" color={line.isError ? 'red' : 'gray'} className="ifx-pre">{line.output.slice(0, 2000)}</Text> : null}
      </Card>);
    case 'approval': return <Text size="1">MCP call <code>{line.tool}</code> <StatusBadge status={line.status} /></Text>;
    case 'end': return line.status === 'result' ? null
      : <Text size="1" color={line.status === 'error' ? 'red' : 'amber'}>{line.status}: {line.text}</Text>;
    default: return null;
  }
}

export function SessionChat({ sessionId, onDeleted }: { sessionId: string; onDeleted: () => void }) {
  const { api, identity } = useSession();
  const { state } = useSessionState();
  const token = state.status === 'signed_in' ? state.token : '';
  const queryClient = useQueryClient();
  const detail = useQuery({
    queryKey: ['sandbox', sessionId],
    queryFn: () => api.get<SandboxDetail>(`/api/v1/sandbox/sessions/${seg(sessionId)}`),
  });
  const [live, setLive] = useState<ChatLine[]>([]);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const abort = useRef<AbortController | null>(null);
  // The transcript's length when the streamed turn began: once the stored transcript has grown past
  // it, the turn is in the transcript and the streamed copy is no longer shown (never both at once).
  const base = useRef<number | null>(null);
  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => { setLive([]); setError(null); }, [sessionId]);

  const send = async () => {
    const message = text.trim();
    if (!message || busy) return;
    base.current = detail.data?.transcript.length ?? 0;
    setBusy(true); setError(null); setText('');
    setLive((l) => [...l, { kind: 'user', text: message }]);
    abort.current = new AbortController();
    try {
      const response = await streamSse(`/api/v1/sandbox/sessions/${seg(sessionId)}/messages`, {
        token, method: 'POST', body: { text: message }, signal: abort.current.signal,
        onEvent: (ev) => setLive((l) => applyTurnEvent(l, ev.event, JSON.parse(ev.data))),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        setError(new ApiError(response.status, body?.error ?? { code: `http_${response.status}`, message: response.statusText }));
      }
    } catch (e) {
      if (!(e instanceof DOMException && e.name === 'AbortError')) setError(e);
    } finally {
      setBusy(false);
      await queryClient.invalidateQueries({ queryKey: ['sandbox', sessionId] });
      await queryClient.invalidateQueries({ queryKey: ['sandbox-sessions'] });   // its turns and last activity
      setLive([]);
    }
  };
  const interrupt = useMutation({ mutationFn: () => api.post(`/api/v1/sandbox/sessions/${seg(sessionId)}/interrupt`) });
  const remove = useMutation({
    mutationFn: () => api.del(`/api/v1/sandbox/sessions/${seg(sessionId)}`),
    onSuccess: async () => { await queryClient.invalidateQueries({ queryKey: ['sandbox-sessions'] }); onDeleted(); },
  });
  const decide = useMutation({
    mutationFn: ({ id, approve }: { id: string; approve: boolean }) =>
      api.post(`/api/v1/sandbox/sessions/${seg(sessionId)}/approvals/${seg(id)}`, { decision: approve ? 'approve' : 'deny' }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['sandbox', sessionId] }),
  });

  const d = detail.data;
  const stored = d ? transcriptLines(d.transcript) : [];
  const lines = d && base.current !== null && d.transcript.length > base.current ? stored : [...stored, ...live];
  const mine = identity.team_node_id === d?.team_id;
  return (
    <Card>
      <Flex justify="between" align="center" mb="2" wrap="wrap" gap="2">
        <Heading as="h2" size="4">{d?.title || sessionId}</Heading>
        <Flex gap="2" align="center">
          {d ? <StatusBadge status={d.status} /> : null}
          <Button highContrast size="1" variant="soft" color="amber" disabled={!busy} loading={interrupt.isPending}
            onClick={() => interrupt.mutate()}>Interrupt</Button>
          <Button highContrast size="1" variant="soft" color="red" loading={remove.isPending} onClick={() => remove.mutate()}>Delete</Button>
        </Flex>
      </Flex>
      <ErrorCallout error={detail.error} title="Reading the session failed" />
      <ErrorCallout error={error} title="The message failed" />
      <ErrorCallout error={interrupt.error ?? remove.error ?? decide.error} />
      <div className="ifx-chat" aria-live="polite" aria-label="Conversation" role="log" tabIndex={0}>
        {lines.map((l, i) => <Line key={i} line={l} />)}
      </div>
      {(d?.pending_approvals ?? []).map((a) => (
        <Flex key={a.approval_id} gap="2" align="center" mt="2">
          <Text size="2">Waiting for approval: <code>{a.tool}</code></Text>
          <Button highContrast size="1" color="green" onClick={() => decide.mutate({ id: a.approval_id, approve: true })}>Approve</Button>
          <Button highContrast size="1" color="red" variant="soft" onClick={() => decide.mutate({ id: a.approval_id, approve: false })}>Deny</Button>
        </Flex>
      ))}
      {d?.status === 'active' && mine ? (
        <form onSubmit={(e) => { e.preventDefault(); void send(); }}>
          <Flex gap="2" mt="3" align="end">
            <TextArea className="ifx-grow" value={text} onChange={(e) => setText(e.target.value)} aria-label="Message"
              placeholder="Ask the sandbox agent…" disabled={busy}
              onKeyDown={(e) => { if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) { e.preventDefault(); void send(); } }} />
            <Button highContrast type="submit" loading={busy}>Send</Button>
          </Flex>
        </form>
      ) : d?.status === 'active' ? <Text size="1" color="gray">Messages are sent with the session team's token.</Text> : null}
    </Card>
  );
}
