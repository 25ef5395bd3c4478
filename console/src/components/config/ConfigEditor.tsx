// Edit a node's own config (org admins): the raw document as JSON, a review of the leaf changes, then a
// JSON merge patch of exactly those changes. Secrets read as "***" and are left out of the patch unless
// a new value was typed, so the API keeps them.
import { Button, Card, Flex, Heading, Text, TextArea } from '@radix-ui/themes';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';

import { ErrorCallout } from '@/components/ErrorCallout';
import { seg } from '@/lib/api';
import { applyMergePatch, buildMergePatch, type JsonObject, leafDiff, maskPreview,
         parseConfigText } from '@/lib/configDiff';
import { useSession } from '@/lib/session';

import { ApiErrorDetails } from './ApiErrorDetails';
import { DiffView } from './DiffView';
import css from './config.module.css';

type Raw = { org_id: string; node_id: string; kind: string; version: number; config: JsonObject };
type Written = { version: number };

export function ConfigEditor({ org, node }: { org: string; node: string }) {
  const { api } = useSession();
  const queryClient = useQueryClient();
  const raw = useQuery({
    queryKey: ['config', org, node, 'raw'],
    queryFn: () => api.get<Raw>(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/config/raw`),
  });
  const [text, setText] = useState('');
  const [reviewing, setReviewing] = useState(false);
  const [saved, setSaved] = useState<number | null>(null);
  useEffect(() => {
    if (raw.data) setText(JSON.stringify(raw.data.config, null, 2));
  }, [raw.data]);

  const parsed = useMemo(() => parseConfigText(text), [text]);
  const patch = raw.data && 'doc' in parsed ? buildMergePatch(raw.data.config, parsed.doc) : null;
  const changes = raw.data && patch ? maskPreview(leafDiff(raw.data.config, applyMergePatch(raw.data.config, patch))) : [];

  const save = useMutation({
    mutationFn: (body: JsonObject) => api.patch<Written>(`/api/v1/orgs/${seg(org)}/nodes/${seg(node)}/config`, body),
    onSuccess: async (written) => {
      setReviewing(false);
      setSaved(written.version);
      await queryClient.invalidateQueries({ queryKey: ['config', org] });
    },
  });

  return (
    <Card>
      <Heading as="h2" size="4" mb="2">Edit {node}&apos;s own config</Heading>
      <ErrorCallout error={raw.error} title="Reading the node's config failed" />
      {raw.data ? (
        <>
          <Text as="p" size="2" color="gray" mb="2">
            Version {raw.data.version}. Only this node&apos;s overrides; remove a key to inherit the parent&apos;s
            value again. Leave *** as it is to keep a secret.
          </Text>
          <TextArea aria-label="Config JSON" className={css.editor} rows={14} value={text} spellCheck={false}
            onChange={(e) => { setText(e.target.value); setReviewing(false); setSaved(null); save.reset(); }} />
          {'error' in parsed ? <Text as="p" color="red" size="2" role="alert">{parsed.error}</Text> : null}
          <Flex gap="2" mt="2">
            <Button disabled={!patch || changes.length === 0} onClick={() => setReviewing(true)}>Review changes</Button>
            <Button variant="soft" color="gray" onClick={() => { setText(JSON.stringify(raw.data.config, null, 2));
                                                                setReviewing(false); save.reset(); }}>Discard</Button>
          </Flex>
          {saved !== null ? <Text as="p" size="2" color="green" mt="2" role="status">Saved as version {saved}.</Text> : null}
          {reviewing && patch ? (
            <Flex direction="column" gap="2" mt="3">
              <Heading as="h3" size="3">Changes to save</Heading>
              <DiffView changes={changes} caption="Changes to save" />
              <Flex gap="2">
                <Button color="orange" loading={save.isPending} onClick={() => save.mutate(patch)}>Save</Button>
                <Button variant="soft" color="gray" onClick={() => setReviewing(false)}>Back to editing</Button>
              </Flex>
            </Flex>
          ) : null}
          <ErrorCallout error={save.error} title="Saving failed" />
          <ApiErrorDetails error={save.error} />
        </>
      ) : null}
    </Card>
  );
}
