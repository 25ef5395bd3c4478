import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Reports and schedules" what="Reports and schedules: list, run now, outcomes." />;
}
