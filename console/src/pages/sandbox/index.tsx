import { Placeholder } from '@/components/Placeholder';

export default function Page() {
  return <Placeholder title="Sandbox sessions" what="Open a session, chat with streamed tool events, interrupt, delete." />;
}
