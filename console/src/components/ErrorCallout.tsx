import { Callout } from '@radix-ui/themes';

import { ApiError, describeError } from '@/lib/api';

/** An API error as the API said it: message, status and code (and nothing when there is none). */
export function ErrorCallout({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <Callout.Root color="red" role="alert" my="2">
      <Callout.Text>
        {title ? <strong>{title}: </strong> : null}
        {describeError(error)}
        {error instanceof ApiError && error.status === 403 ? ' — this token may not do that.' : null}
      </Callout.Text>
    </Callout.Root>
  );
}
