import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Deliveries" what="Recent webhook deliveries with their outcome, and re-drive." />;
}
