// A secret the API returns once (a new token): shown in a dialog with a copy button, gone when closed.
import { Button, Callout, Code, Dialog, Flex } from '@radix-ui/themes';
import { useState } from 'react';

export function SecretOnce({ title, secret, onClose }: { title: string; secret: string | null; onClose(): void }) {
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret ?? '');
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <Dialog.Root open={secret !== null} onOpenChange={(open) => { if (!open) { setCopied('no'); onClose(); } }}>
      <Dialog.Content maxWidth="560px">
        <Dialog.Title>{title}</Dialog.Title>
        <Dialog.Description size="2" mb="3">
          Copy it now: it is shown only once and cannot be read back.
        </Dialog.Description>
        <Code size="3" className="ifx-secret" data-testid="secret-value">{secret}</Code>
        {copied === 'failed' ? (
          <Callout.Root color="amber" my="2"><Callout.Text>Copy failed: select the text and copy it by hand.</Callout.Text></Callout.Root>
        ) : null}
        <Flex gap="3" mt="4" justify="end">
          <Button variant="soft" onClick={copy}>{copied === 'yes' ? 'Copied' : 'Copy'}</Button>
          <Dialog.Close><Button>Done</Button></Dialog.Close>
        </Flex>
      </Dialog.Content>
    </Dialog.Root>
  );
}
