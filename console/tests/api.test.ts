import { describe, expect, it, vi } from 'vitest';

import { ApiError, buildPath, createApiClient, describeError } from '@/lib/api';

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), {
  status, headers: { 'Content-Type': 'application/json' } });

describe('buildPath', () => {
  it('drops empty parameters and encodes the rest', () => {
    expect(buildPath('/api/v1/x', { a: 'b c', cursor: null, limit: 5, empty: '' })).toBe('/api/v1/x?a=b+c&limit=5');
  });

  it('refuses a path that could leave the origin', () => {
    expect(() => buildPath('https://evil.example/x')).toThrow();
  });
});

describe('createApiClient', () => {
  it('sends the bearer token in a header, never in the URL', async () => {
    const fetcher = vi.fn(async () => json(200, { ok: true }));
    await createApiClient('secret-token', undefined, fetcher as unknown as typeof fetch).get('/api/v1/auth/whoami');
    const [url, init] = fetcher.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/v1/auth/whoami');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer secret-token');
    expect(init.credentials).toBe('omit');
  });

  it("turns the API's error shape into an ApiError and reports 401s", async () => {
    const onUnauthorized = vi.fn();
    const fetcher = vi.fn(async () => json(401, { error: { code: 'token_revoked', message: 'token has been revoked' } }));
    const api = createApiClient('t', onUnauthorized, fetcher as unknown as typeof fetch);
    const error = (await api.get('/api/v1/auth/whoami').catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('token_revoked');
    expect(describeError(error)).toBe('token has been revoked (401 token_revoked)');
    expect(onUnauthorized).toHaveBeenCalledOnce();
  });

  it('keeps the status when the body is not the API shape', async () => {
    const fetcher = vi.fn(async () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const error = (await createApiClient('t', undefined, fetcher as unknown as typeof fetch).get('/api/x')
      .catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(502);
    expect(error.code).toBe('http_502');
  });

  it('follows next_cursor through every page', async () => {
    const pages: Record<string, unknown> = {
      '/api/v1/orgs': { items: [1, 2], next_cursor: 'c1' },
      '/api/v1/orgs?cursor=c1': { items: [3], next_cursor: null },
    };
    const fetcher = vi.fn(async (url: string) => json(200, pages[url]));
    const items = await createApiClient('t', undefined, fetcher as unknown as typeof fetch).listAll<number>('/api/v1/orgs');
    expect(items).toEqual([1, 2, 3]);
    expect(fetcher).toHaveBeenCalledTimes(2);
  });
});
