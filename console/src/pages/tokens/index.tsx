import { Callout, Heading } from '@radix-ui/themes';

import { IssueToken } from '@/components/tokens/IssueToken';
import { TokenList } from '@/components/tokens/TokenList';
import { useSession } from '@/lib/session';

export default function TokensPage() {
  const { org } = useSession();
  return (
    <>
      <Heading as="h1" size="6" mb="3">Tokens</Heading>
      {org ? (
        <>
          <IssueToken org={org} />
          <TokenList org={org} />
        </>
      ) : <Callout.Root color="gray"><Callout.Text>Pick an org (top bar) to manage its tokens.</Callout.Text></Callout.Root>}
    </>
  );
}
