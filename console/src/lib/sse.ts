// Server-Sent Events over fetch. EventSource cannot send an Authorization header, and the token must
// never go into a URL, so the console reads the stream with fetch (bearer header) and parses it here.
// The parser follows the WHATWG "event stream interpretation" rules: lines end in LF, CRLF or CR;
// a blank line dispatches; `:` starts a comment (the API's keep-alive pings); `data` lines join with LF.

export type SseEvent = { event: string; data: string; id: string | null };

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventName = '';
  private lastId: string | null = null;
  private pendingCR = false;

  /** Feed a decoded chunk; returns the events it completed (in order). */
  feed(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1);   // a CRLF split across chunks
    this.pendingCR = false;
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      if (match[0] === '\r' && match.index === this.buffer.length - 1) {
        this.pendingCR = true;   // may be the first half of CRLF: take the line, skip a following LF
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.eventName = '';
        return null;
      }
      const ev = { event: this.eventName || 'message', data: this.data.join('\n'), id: this.lastId };
      this.data = [];
      this.eventName = '';
      return ev;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.eventName = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    return null;   // `retry` and unknown fields are ignored
  }
}

export type StreamOptions = {
  token: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  signal?: AbortSignal;
  onEvent: (event: SseEvent) => void;
  fetcher?: typeof fetch;
};

/** Open `path` with the bearer header and call `onEvent` for every event until the stream ends.
 * Returns the response; when it is not ok (an API error with its {error} body), nothing is read. */
export async function streamSse(path: string, { token, method = 'GET', body, signal, onEvent,
                                                fetcher = (...a) => fetch(...a) }: StreamOptions): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetcher(path, { method, headers, signal, credentials: 'omit', cache: 'no-store',
                                         body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok || !response.body) return response;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const ev of parser.feed(decoder.decode(value, { stream: true }))) onEvent(ev);
  }
  // At end of stream an event without its closing blank line is discarded (the spec's rule).
  for (const ev of parser.feed(decoder.decode())) onEvent(ev);
  return response;
}
