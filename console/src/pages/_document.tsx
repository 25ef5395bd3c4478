import { Head, Html, Main, NextScript } from 'next/document';

// No inline scripts or styles here: the CSP (serve_apps/console.py) allows only the hashes the
// post-build step (scripts/csp-manifest.mjs) finds in the export.
export default function Document() {
  return (
    <Html lang="en">
      <Head>
        <meta name="referrer" content="no-referrer" />
        <link rel="icon" href="/ui/favicon.svg" type="image/svg+xml" />
      </Head>
      <body>
        <Main />
        <NextScript />
      </body>
    </Html>
  );
}
