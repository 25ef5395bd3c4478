import { describe, expect, it } from 'vitest';

import { SseParser, streamSse } from '@/lib/sse';

describe('SseParser', () => {
  it('parses events the agent API sends, pings and all', () => {
    const p = new SseParser();
    const out = p.feed(': ping\n\nid: 1\nevent: status\ndata: {"seq":1}\n\nid: 2\nevent: end\ndata: {"status":"succeeded"}\n\n');
    expect(out).toEqual([
      { event: 'status', data: '{"seq":1}', id: '1' },
      { event: 'end', data: '{"status":"succeeded"}', id: '2' },
    ]);
  });

  it('joins data lines, defaults the event name, keeps the last id', () => {
    const p = new SseParser();
    expect(p.feed('id: 7\ndata: a\ndata:b\n\ndata: c\n\n')).toEqual([
      { event: 'message', data: 'a\nb', id: '7' }, { event: 'message', data: 'c', id: '7' }]);
  });

  it('handles every line ending and chunks split anywhere, CRLF included', () => {
    const text = 'event: tool_start\r\ndata: {"x":1}\r\n\r\nevent: result\rdata: done\r\r';
    const whole = new SseParser().feed(text);
    expect(whole.map((e) => e.event)).toEqual(['tool_start', 'result']);
    for (let cut = 1; cut < text.length; cut += 1) {
      const p = new SseParser();
      const events = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(events).toEqual(whole);
    }
  });

  it('ignores comments, unknown fields and a blank line without data', () => {
    expect(new SseParser().feed(':hi\nretry: 10\nfoo: bar\n\n\n')).toEqual([]);
  });

  it('does not dispatch an event missing its blank line', () => {
    expect(new SseParser().feed('data: half')).toEqual([]);
  });
});

describe('streamSse', () => {
  it('sends the token as a header (never in the URL) and reads a chunked body', async () => {
    const chunks = ['event: a\nda', 'ta: 1\n\nevent: b\ndata: 2\n', '\n'];
    let seen: { url: string; init: RequestInit } | null = null;
    const fetcher = async (url: RequestInfo | URL, init?: RequestInit) => {
      seen = { url: String(url), init: init! };
      const body = new ReadableStream({
        start(c) { for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch)); c.close(); },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    };
    const got: string[] = [];
    await streamSse('/api/v1/agent/runs/run_1/events?after=3', {
      token: 'tok-secret', onEvent: (e) => got.push(`${e.event}=${e.data}`), fetcher: fetcher as typeof fetch });
    expect(got).toEqual(['a=1', 'b=2']);
    expect(seen!.url).not.toContain('tok-secret');
    expect((seen!.init.headers as Record<string, string>).Authorization).toBe('Bearer tok-secret');
  });

  it('returns a failed response unread', async () => {
    const fetcher = async () => new Response('{"error":{"code":"run_not_found","message":"x"}}', { status: 404 });
    const got: string[] = [];
    const r = await streamSse('/x', { token: 't', onEvent: (e) => got.push(e.event), fetcher: fetcher as typeof fetch });
    expect(r.status).toBe(404);
    expect(got).toEqual([]);
  });
});
