// The org's audit log, filterable (org admins; the API refuses everyone else).
import { Callout, Heading } from '@radix-ui/themes';

import { AuditLog } from '@/components/audit/AuditLog';
import { useSession } from '@/lib/session';

export default function AuditPage() {
  const { org } = useSession();
  return (
    <>
      <Heading as="h1" size="6" mb="3">Audit log</Heading>
      {org ? <AuditLog org={org} />
        : <Callout.Root color="gray"><Callout.Text>Pick an org (top bar) to read its audit log.</Callout.Text></Callout.Root>}
    </>
  );
}
