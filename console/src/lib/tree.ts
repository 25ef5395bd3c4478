// The org tree from the flat node list (GET /api/v1/orgs/{org}/nodes: root first, each with parent_id).

export type OrgNode = {
  org_id: string;
  node_id: string;
  parent_id: string | null;
  kind: 'org' | 'unit' | 'team';
  name: string | null;
  path: string[];
  depth: number;
  version: number;
  created_at: string;
  updated_at: string;
};

export type TreeNode = OrgNode & { children: TreeNode[] };

/** Nest `nodes` under their parents, children sorted by id. A node whose parent is missing from the
 * list (a partial page) becomes a root rather than disappearing. */
export function buildTree(nodes: readonly OrgNode[]): TreeNode[] {
  const byId = new Map<string, TreeNode>();
  for (const n of nodes) byId.set(n.node_id, { ...n, children: [] });
  const roots: TreeNode[] = [];
  for (const n of byId.values()) {
    const parent = n.parent_id && n.parent_id !== n.node_id ? byId.get(n.parent_id) : undefined;
    if (parent) parent.children.push(n);
    else roots.push(n);
  }
  const sort = (list: TreeNode[]) => {
    list.sort((a, b) => a.node_id.localeCompare(b.node_id));
    list.forEach((c) => sort(c.children));
  };
  sort(roots);
  return roots;
}

/** Depth-first order with each node's depth in the displayed tree. */
export function flatten(roots: readonly TreeNode[], depth = 0): Array<{ node: TreeNode; depth: number }> {
  return roots.flatMap((n) => [{ node: n, depth }, ...flatten(n.children, depth + 1)]);
}

/** Where `nodeId` may move: units and the org root, never itself or one of its descendants. */
export function moveTargets(nodes: readonly OrgNode[], nodeId: string): OrgNode[] {
  const blocked = new Set<string>([nodeId]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of nodes) {
      if (n.parent_id && blocked.has(n.parent_id) && !blocked.has(n.node_id)) {
        blocked.add(n.node_id);
        grew = true;
      }
    }
  }
  return nodes.filter((n) => n.kind !== 'team' && !blocked.has(n.node_id));
}
