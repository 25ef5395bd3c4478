import { describe, expect, it } from 'vitest';

import { buildTree, flatten, moveTargets, type OrgNode } from '@/lib/tree';

const node = (node_id: string, parent_id: string | null, kind: OrgNode['kind']): OrgNode => ({
  org_id: 'acme', node_id, parent_id, kind, name: node_id, path: [], depth: 0, version: 1,
  created_at: '', updated_at: '',
});

const NODES = [node('acme', null, 'org'), node('eng', 'acme', 'unit'), node('web', 'eng', 'unit'),
               node('payments', 'eng', 'team'), node('frontend', 'web', 'team'), node('ops', 'acme', 'team')];

describe('buildTree / flatten', () => {
  it('nests nodes under their parents, sorted, with display depth', () => {
    const rows = flatten(buildTree(NODES)).map(({ node: n, depth }) => `${depth}:${n.node_id}`);
    expect(rows).toEqual(['0:acme', '1:eng', '2:payments', '2:web', '3:frontend', '1:ops']);
  });

  it('keeps a node whose parent is not in the list as a root instead of dropping it', () => {
    const roots = buildTree([node('orphan', 'gone', 'team'), node('acme', null, 'org')]);
    expect(roots.map((r) => r.node_id)).toEqual(['acme', 'orphan']);
  });

  it('does not loop on a node that names itself as parent (the org root)', () => {
    expect(buildTree([node('acme', 'acme', 'org')]).map((r) => r.node_id)).toEqual(['acme']);
  });
});

describe('moveTargets', () => {
  it('offers the org and units, never the node itself, its descendants or a team', () => {
    expect(moveTargets(NODES, 'eng').map((n) => n.node_id)).toEqual(['acme']);
    expect(moveTargets(NODES, 'frontend').map((n) => n.node_id).sort()).toEqual(['acme', 'eng', 'web']);
  });
});
