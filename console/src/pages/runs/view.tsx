import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Run" what="A run's live timeline, RCA, evidence, approvals, cancel and rerun (?id=<run id>)." />;
}
