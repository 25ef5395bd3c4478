// Config documents in the console: the JSON merge patch (RFC 7396) that turns what was read into what
// was edited, the leaf diff shown before saving (the same shape the API stores with every version), and
// the effective config's leaves with where each comes from and which are locked.
//
// Secrets: the API shows every secret leaf as "***" and keeps the stored value when a patch omits it or
// sends "***" back. The patch builder therefore never sends a leaf that is still "***": a secret goes to
// the API only when the user typed a new value (or removed it, which is a null).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type Change = { path: string; op: 'add' | 'remove' | 'replace'; old?: Json; new?: Json };

export const MASK = '***';

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function equal(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => equal(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return false;
}

/** The merge patch from `before` to `after` (objects recurse; arrays and scalars replace; a key that
 * is gone becomes null). A leaf that is still the mask is left out, so a secret is never sent back. */
export function buildMergePatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(before)) {
    if (!(key in after)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (value === MASK && (old === MASK || old === undefined)) continue;   // unchanged (or unknown) secret
    if (isObject(value) && isObject(old)) {
      const sub = buildMergePatch(old, value);
      if (Object.keys(sub).length) patch[key] = sub;
    } else if (value === null) {
      if (key in before) patch[key] = null;      // null in a merge patch means "remove"
    } else if (!equal(old, value)) {
      patch[key] = isObject(value) ? stripMasks(value) : value;
    }
  }
  return patch;
}

function stripMasks(value: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === MASK) continue;
    out[k] = isObject(v) ? stripMasks(v) : v;
  }
  return out;
}

/** `doc` with `patch` applied (RFC 7396); neither input is changed. */
export function applyMergePatch(doc: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...doc };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) out[key] = applyMergePatch(isObject(out[key]) ? (out[key] as JsonObject) : {}, value);
    else out[key] = value;
  }
  return out;
}

/** Every leaf (non-object value, or empty object) of `doc` as [dotted path, value], sorted by path. */
export function leaves(doc: JsonObject, prefix = ''): Array<[string, Json]> {
  const out: Array<[string, Json]> = [];
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isObject(value) && Object.keys(value).length) out.push(...leaves(value, path));
    else out.push([path, value]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Leaf changes from `before` to `after`, in path order (what the API stores as a version's diff). */
export function leafDiff(before: JsonObject, after: JsonObject): Change[] {
  const a = new Map(leaves(before));
  const b = new Map(leaves(after));
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const changes: Change[] = [];
  for (const path of paths) {
    if (!b.has(path)) changes.push({ path, op: 'remove', old: a.get(path) });
    else if (!a.has(path)) changes.push({ path, op: 'add', new: b.get(path) });
    else if (!equal(a.get(path), b.get(path))) changes.push({ path, op: 'replace', old: a.get(path), new: b.get(path) });
  }
  return changes;
}

export type ExplainedLeaf = { path: string; value: Json; source: string | null; lockedBy: string | null;
                              lock: string | null };

/** The lock covering `path` (the path itself or an ancestor path), or null. */
export function lockFor(path: string, locks: Record<string, string>): string | null {
  let best: string | null = null;
  for (const lock of Object.keys(locks)) {
    if ((path === lock || path.startsWith(`${lock}.`)) && (best === null || lock.length > best.length)) best = lock;
  }
  return best;
}

/** The explained effective config (GET …/config/effective?explain=true) as rows: each leaf with the
 * node that set it (or "defaults") and the lock over it. `locked_paths` itself is not a leaf. */
export function explainedLeaves(config: JsonObject, sources: Record<string, string>,
                                locks: Record<string, string>): ExplainedLeaf[] {
  const { locked_paths: _omit, ...rest } = config;
  return leaves(rest).map(([path, value]) => {
    const lock = lockFor(path, locks);
    return { path, value, source: sources[path] ?? null, lock, lockedBy: lock ? locks[lock] : null };
  });
}

/** Parse the editor's text: a JSON object, or an error message saying where it is wrong. */
export function parseConfigText(text: string): { doc: JsonObject } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { error: `not valid JSON: ${(e as Error).message}` };
  }
  if (!isObject(parsed)) return { error: 'the config must be a JSON object' };
  return { doc: parsed };
}

/** A leaf value for display: strings as they are, everything else as JSON. */
export function show(value: Json | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// The API's secret leaves (config_service/core/secret_fields.py): everything under integrations.<name>,
// and keys that look secret anywhere. Used only to keep a newly typed secret off the screen in the
// preview; the API decides what it stores encrypted.
const SECRET_KEY = /(^|_)(api_key|token|secret|password|passwd|private_key|key)$/i;

export function looksSecret(path: string): boolean {
  const parts = path.split('.');
  return (parts[0] === 'integrations' && parts.length > 2) || SECRET_KEY.test(parts[parts.length - 1]);
}

/** `changes` for display before saving: a new value of a secret leaf shows as the mask. */
export function maskPreview(changes: Change[]): Change[] {
  return changes.map((c) => ('new' in c && (c.old === MASK || looksSecret(c.path))
    ? { ...c, new: `${MASK} (new value)` } : c));
}
