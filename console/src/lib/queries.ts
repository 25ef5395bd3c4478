// Shared data hooks over the API client: one way to page a list (the envelope's next_cursor).
import { useInfiniteQuery } from '@tanstack/react-query';

import type { Page, Query } from './api';
import { useSession } from './session';

/** A cursor-paged list endpoint as one growing list: `items`, `hasMore`, `more()`.
 * `key` must identify path + query (it is the cache key). */
export function usePagedList<T>(key: readonly unknown[], path: string, query: Query = {},
                                options: { limit?: number; enabled?: boolean; refetchInterval?: number } = {}) {
  const { api } = useSession();
  const list = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam, signal }) => api.get<Page<T>>(path, { ...query, limit: options.limit ?? 100,
                                                                 cursor: pageParam }, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    enabled: options.enabled ?? true,
    refetchInterval: options.refetchInterval,
  });
  return {
    ...list,
    items: list.data?.pages.flatMap((p) => p.items) ?? [],
    hasMore: list.hasNextPage,
    more: () => list.fetchNextPage(),
  };
}
