import '@radix-ui/themes/styles.css';
import '@/styles/console.css';

import { Theme } from '@radix-ui/themes';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { AppProps } from 'next/app';
import Head from 'next/head';
import { useState } from 'react';

import { Layout } from '@/components/Layout';
import { ApiError } from '@/lib/api';
import { SessionProvider } from '@/lib/session';

function retry(failures: number, error: unknown): boolean {
  // 4xx answers are final (the API said no); retry transport errors and 5xx twice.
  return !(error instanceof ApiError && error.status < 500) && failures < 2;
}

export default function ConsoleApp({ Component, pageProps }: AppProps) {
  const [queryClient] = useState(() => new QueryClient({
    defaultOptions: { queries: { retry, staleTime: 5_000, refetchOnWindowFocus: false } },
  }));
  return (
    <QueryClientProvider client={queryClient}>
      <Head><title>IncidentFox console</title></Head>
      <Theme accentColor="orange" grayColor="slate" radius="medium">
        <SessionProvider>
          <Layout><Component {...pageProps} /></Layout>
        </SessionProvider>
      </Theme>
    </QueryClientProvider>
  );
}
