import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Overview" what="Runs per day, success rate, time to first message and time to RCA, per team, as charts." />;
}
