import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Audit log" what="The org's audit log, filterable." />;
}
