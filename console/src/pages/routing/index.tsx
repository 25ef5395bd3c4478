import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Routing claims" what="Routing identifiers each team claims, with conflicts explained." />;
}
