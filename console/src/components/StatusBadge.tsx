import { Badge } from '@radix-ui/themes';

const COLOR: Record<string, 'gray' | 'blue' | 'green' | 'red' | 'amber' | 'orange'> = {
  queued: 'gray', running: 'blue', succeeded: 'green', failed: 'red', cancelled: 'amber',
  pending: 'orange', approved: 'green', denied: 'red', expired: 'gray', executed: 'green', executing: 'blue',
  not_runnable: 'gray', done: 'green', claimed: 'blue', active: 'green',
};

/** A run, approval or job status as a coloured badge (the word is always shown: colour is not the signal). */
export function StatusBadge({ status }: { status: string | null | undefined }) {
  const s = status ?? 'unknown';
  return <Badge highContrast color={COLOR[s] ?? 'gray'} data-status={s}>{s.replace('_', ' ')}</Badge>;
}
