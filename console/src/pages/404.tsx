import { Callout, Heading } from '@radix-ui/themes';
import Link from 'next/link';

export default function NotFound() {
  return (
    <>
      <Heading as="h1" size="6" mb="3">Not found</Heading>
      <Callout.Root color="gray"><Callout.Text>No such page. <Link href="/">Back to the overview</Link>.</Callout.Text></Callout.Root>
    </>
  );
}
