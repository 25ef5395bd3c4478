import { Callout, Heading } from '@radix-ui/themes';

/** A page another part of issue #17 fills in; says so instead of pretending. */
export function Placeholder({ title, what }: { title: string; what: string }) {
  return (
    <>
      <Heading as="h1" size="6" mb="3">{title}</Heading>
      <Callout.Root color="gray"><Callout.Text>{what} This page is not built yet.</Callout.Text></Callout.Root>
    </>
  );
}
