// The one HTTP client of the console: same origin as the API (no CORS), bearer token from the signed-in
// session, every error turned into an ApiError carrying the API's {error: {code, message, details}}.
// The console holds no privilege of its own: whatever a page shows or does, the API checked.

export type ApiErrorBody = { code: string; message: string; details?: unknown };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.details = body.details;
  }
}

/** The list envelope every list endpoint answers (docs/api.md "Lists and pagination"). */
export type Page<T> = { items: T[]; next_cursor: string | null };

export type Query = Record<string, string | number | boolean | null | undefined>;

export function buildPath(path: string, query?: Query): string {
  if (!path.startsWith('/')) throw new Error(`API path must start with '/': ${path}`);
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Encode one path segment (org, node and token ids come from the API but are still tenant-set). */
export const seg = (value: string): string => encodeURIComponent(value);

async function errorFrom(response: Response): Promise<ApiError> {
  let body: ApiErrorBody = { code: `http_${response.status}`, message: response.statusText || 'request failed' };
  try {
    const parsed = await response.json();
    if (parsed && typeof parsed === 'object' && parsed.error && typeof parsed.error.code === 'string') {
      body = parsed.error as ApiErrorBody;
    }
  } catch {
    // not JSON (a proxy's page): keep the status text
  }
  return new ApiError(response.status, body);
}

export type RequestOptions = { query?: Query; body?: unknown; signal?: AbortSignal; headers?: Record<string, string> };

export type ApiClient = {
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  patch<T>(path: string, body: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  del<T>(path: string): Promise<T>;
  /** Every page of a list endpoint, following next_cursor (bounded by maxPages). */
  listAll<T>(path: string, query?: Query, maxPages?: number): Promise<T[]>;
};

export function createApiClient(token: string, onUnauthorized?: (error: ApiError) => void,
                                fetcher: typeof fetch = (...a) => fetch(...a)): ApiClient {
  async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json',
                                              ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await fetcher(buildPath(path, options.query),
                                   { method, headers, body, signal: options.signal, credentials: 'omit',
                                     cache: 'no-store' });
    if (!response.ok) {
      const error = await errorFrom(response);
      if (response.status === 401) onUnauthorized?.(error);
      throw error;
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    request,
    get: (path, query, signal) => request('GET', path, { query, signal }),
    post: (path, body) => request('POST', path, { body }),
    patch: (path, body) => request('PATCH', path, { body }),
    put: (path, body) => request('PUT', path, { body }),
    del: (path) => request('DELETE', path),
    async listAll<T>(path: string, query: Query = {}, maxPages = 20): Promise<T[]> {
      const items: T[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < maxPages; i += 1) {
        const page: Page<T> = await request<Page<T>>('GET', path, { query: { ...query, cursor } });
        items.push(...page.items);
        cursor = page.next_cursor;
        if (!cursor) break;
      }
      return items;
    },
  };
}

/** A message for people: the API's message, and its code for searching the docs. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.status} ${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}
