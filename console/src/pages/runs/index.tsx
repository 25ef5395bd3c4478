import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Runs" what="A filterable, paginated list of runs (team, status, source, time)." />;
}
