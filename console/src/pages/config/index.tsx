import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Config" what="A node's effective config with where each leaf comes from, the editor, history and rollback." />;
}
