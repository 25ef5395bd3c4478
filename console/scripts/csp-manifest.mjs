// Post-build step (npm run build): hash every inline <script> and <style> the static export emits and
// write out/csp.json, which the platform (serve_apps/console.py) turns into the Content-Security-Policy
// of every file under /ui. No 'unsafe-inline' anywhere: an inline script or style without its hash
// here is refused by the browser. Inline style="..." attributes cannot be allowed by a hash (without
// 'unsafe-hashes'), so the build fails when a prerendered page contains one.
//
// Besides the HTML, libraries render constant inline <style>/<script> elements at run time (Radix's
// ScrollArea renders one <style> with fixed CSS): the compiled chunks are scanned for
// React elements of that shape with a literal body, and those bodies are hashed too. Anything
// dynamic is caught by the browser tests' CSP watcher (tests/console/conftest.py), not here.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const OUT = new URL('../out/', import.meta.url).pathname;
// Script elements the browser does not execute (data blocks) need no hash.
const DATA_TYPES = new Set(['application/json', 'application/ld+json', 'text/template']);

function* filesEnding(dir, suffix) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* filesEnding(path, suffix);
    else if (name.endsWith(suffix)) yield path;
  }
}

// ("style",{dangerouslySetInnerHTML:{__html:"..."}  — React's compiled JSX with a literal body.
const RUNTIME_INLINE = /\("(style|script)",\{dangerouslySetInnerHTML:\{__html:("(?:[^"\\]|\\.)*")\}/g;

export function runtimeInlineHashes(js) {
  const scripts = [];
  const styles = [];
  for (const m of js.matchAll(RUNTIME_INLINE)) {
    let body;
    try {
      body = JSON.parse(m[2]);
    } catch {
      continue;   // a JS-only escape: the CSP watcher will report it if it is ever rendered
    }
    (m[1] === 'style' ? styles : scripts).push(sha256(body));
  }
  return { scripts, styles };
}

const sha256 = (text) => `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;

export function inlineHashes(html) {
  const scripts = [];
  const styles = [];
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    const [, attrs, body] = m;
    if (/\bsrc\s*=/i.test(attrs) || body.length === 0) continue;
    const type = /\btype\s*=\s*["']?([^"'\s>]+)/i.exec(attrs)?.[1]?.toLowerCase();
    if (type && DATA_TYPES.has(type)) continue;
    scripts.push(sha256(body));
  }
  for (const m of html.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/gi)) styles.push(sha256(m[1]));
  // Attribute values are quoted in React's output; a style attribute is always ` style="`.
  const styleAttributes = (html.match(/<[a-z][^>]*\sstyle\s*=\s*["']/gi) || []).length;
  return { scripts, styles, styleAttributes };
}

function main() {
  const scripts = new Set();
  const styles = new Set();
  const offenders = [];
  let pages = 0;
  for (const file of filesEnding(join(OUT, '_next'), '.js')) {
    const found = runtimeInlineHashes(readFileSync(file, 'utf8'));
    found.scripts.forEach((h) => scripts.add(h));
    found.styles.forEach((h) => styles.add(h));
  }
  for (const file of filesEnding(OUT, '.html')) {
    pages += 1;
    const found = inlineHashes(readFileSync(file, 'utf8'));
    found.scripts.forEach((h) => scripts.add(h));
    found.styles.forEach((h) => styles.add(h));
    if (found.styleAttributes) offenders.push(`${relative(OUT, file)} (${found.styleAttributes})`);
  }
  if (pages === 0) throw new Error(`no HTML under ${OUT}: run next build first`);
  if (offenders.length) {
    console.error(`inline style attributes would be refused by the CSP (style-src has no 'unsafe-inline'):\n  ${offenders.join('\n  ')}`);
    process.exit(1);
  }
  const manifest = { version: 1, script_hashes: [...scripts].sort(), style_hashes: [...styles].sort(), pages };
  writeFileSync(join(OUT, 'csp.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`csp.json: ${pages} pages, ${scripts.size} inline script hash(es), ${styles.size} inline style hash(es)`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
