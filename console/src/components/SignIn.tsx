// Sign in with a token: global admin, org admin or team (whoami says which). The form posts nowhere;
// the token goes to the API in a header and is kept in this tab's sessionStorage only.
import { Button, Callout, Card, Flex, Heading, Text, TextField } from '@radix-ui/themes';
import { useState } from 'react';
import { useForm } from 'react-hook-form';

import { ErrorCallout } from './ErrorCallout';

type Form = { token: string };

export function SignIn({ onSignIn, notice }: { onSignIn(token: string): Promise<void>; notice?: string }) {
  const { register, handleSubmit, formState } = useForm<Form>({ defaultValues: { token: '' } });
  const [error, setError] = useState<unknown>(null);
  const submit = handleSubmit(async ({ token }) => {
    setError(null);
    try {
      await onSignIn(token);
    } catch (e) {
      setError(e);
    }
  });
  return (
    <main className="ifx-signin">
      <Card size="3">
        <form onSubmit={submit} method="post" action="#" autoComplete="off">
          <Flex direction="column" gap="3">
            <Heading as="h1" size="6">IncidentFox console</Heading>
            <Text as="p" size="2" color="gray">
              Sign in with an API token: the global admin token, an org admin token or a team token.
              It stays in this browser tab only and is cleared when you sign out or close the tab.
            </Text>
            {notice ? <Callout.Root color="amber"><Callout.Text>{notice}</Callout.Text></Callout.Root> : null}
            <label htmlFor="token"><Text size="2" weight="medium">Token</Text></label>
            <TextField.Root id="token" type="password" autoFocus spellCheck={false} autoComplete="off"
              {...register('token', { required: 'paste a token' })} />
            {formState.errors.token ? <Text color="red" size="2" role="alert">{formState.errors.token.message}</Text> : null}
            <ErrorCallout error={error} title="Sign-in failed" />
            <Button type="submit" loading={formState.isSubmitting}>Sign in</Button>
          </Flex>
        </form>
      </Card>
    </main>
  );
}
