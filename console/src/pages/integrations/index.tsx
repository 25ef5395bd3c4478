import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Integrations" what="Integrations with a test-connection action." />;
}
