// Follow a run's events live: GET /api/v1/agent/runs/{id}/events?after=<last seq> read with fetch (the
// bearer token in a header; EventSource could only carry it in the URL), fed to the timeline reducer.
// A dropped stream reconnects from the last applied seq (with a growing pause) until the `end` event.
import { useEffect, useReducer, useRef } from 'react';

import { buildPath, seg } from './api';
import type { RunEvent } from './runs';
import { useSessionState } from './session';
import { streamSse } from './sse';
import { EMPTY_TIMELINE, type Timeline, timelineReducer } from './timeline';

export function useRunStream(runId: string | null, initial: RunEvent[] | undefined,
                             onActivity?: (kind: string) => void): Timeline {
  const { state } = useSessionState();
  const token = state.status === 'signed_in' ? state.token : null;
  const [timeline, dispatch] = useReducer(timelineReducer, EMPTY_TIMELINE);
  const lastSeq = useRef(0);
  const activity = useRef(onActivity);
  activity.current = onActivity;
  lastSeq.current = timeline.lastSeq;

  useEffect(() => { dispatch({ type: 'reset' }); lastSeq.current = 0; }, [runId]);
  useEffect(() => { if (initial?.length) dispatch({ type: 'events', events: initial }); }, [initial]);

  const ready = initial !== undefined;
  useEffect(() => {
    if (!runId || !token || !ready) return undefined;
    const abort = new AbortController();
    let pause = 500;
    (async () => {
      while (!abort.signal.aborted) {
        let ended = false;
        try {
          const response = await streamSse(
            buildPath(`/api/v1/agent/runs/${seg(runId)}/events`, { after: lastSeq.current }),
            { token, signal: abort.signal, onEvent: (ev) => {
              const body = JSON.parse(ev.data) as Record<string, unknown>;
              if (ev.event === 'end') {
                if (body.timeout) return;   // the server's stream limit, not the run's end: reconnect
                ended = true;
                dispatch({ type: 'end', status: String(body.status ?? '') });
                activity.current?.('end');
                return;
              }
              dispatch({ type: 'events', events: [body as unknown as RunEvent] });
              activity.current?.(ev.event);
              pause = 500;
            } });
          if (!response.ok) return;   // 404/401: the run page shows the API's answer
        } catch {
          if (abort.signal.aborted) return;
        }
        if (ended) return;
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 10_000);
      }
    })();
    return () => abort.abort();
  }, [runId, token, ready]);
  return timeline;
}
