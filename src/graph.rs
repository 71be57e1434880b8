//! The dependency graph (petgraph): lookups (clusters, registries) feed the resources that need
//! them. Checked for cycles, printed as DOT by `acrlink graph`, and walked by apply: a change
//! starts when what it depends on has succeeded; deletes run in reverse order; everything
//! downstream of a failure is skipped and names the root cause once.

use std::collections::BTreeMap;
use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::observe::Inventory;
use crate::plan::{Action, Change};
use crate::resolve::DesiredAssignment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Cluster,
    Registry,
    RoleAssignment,
    /// Pull-secret resources: Secrets, ServiceAccount entries, namespaces, tokens, scope maps.
    Kubernetes,
    RegistryObject,
}

#[derive(Debug, Clone)]
pub struct GraphNode {
    pub address: String,
    pub kind: NodeKind,
}

pub struct ResourceGraph {
    pub graph: DiGraph<GraphNode, ()>,
    index: BTreeMap<String, NodeIndex>,
}

impl ResourceGraph {
    fn node(&mut self, address: String, kind: NodeKind) -> NodeIndex {
        if let Some(&index) = self.index.get(&address) {
            return index;
        }
        let index = self.graph.add_node(GraphNode { address: address.clone(), kind });
        self.index.insert(address, index);
        index
    }

    pub fn build(desired: &[DesiredAssignment], inventory: &Inventory) -> ResourceGraph {
        let mut graph = ResourceGraph { graph: DiGraph::new(), index: BTreeMap::new() };
        for cluster in &inventory.clusters {
            graph.node(format!("cluster[{}]", cluster.key), NodeKind::Cluster);
        }
        for registry in inventory.registries.keys() {
            graph.node(format!("registry[{registry}]"), NodeKind::Registry);
        }
        for want in desired {
            let assignment = graph.node(want.address.clone(), NodeKind::RoleAssignment);
            let cluster = graph.node(format!("cluster[{}]", want.cluster), NodeKind::Cluster);
            let registry = graph.node(format!("registry[{}]", want.registry), NodeKind::Registry);
            graph.graph.update_edge(cluster, assignment, ());
            graph.graph.update_edge(registry, assignment, ());
        }
        graph
    }

    /// Adds pull-secret changes: each hangs off its cluster or registry and its dependencies.
    pub fn add_changes(&mut self, changes: &[Change]) {
        use crate::plan::Resource;
        for change in changes {
            let (kind, parent) = match &change.resource {
                Resource::RoleAssignment { .. } => continue,
                Resource::ScopeMap { registry, .. } | Resource::RegistryToken { registry, .. } => {
                    (NodeKind::RegistryObject, format!("registry[{registry}]"))
                }
                other => (
                    NodeKind::Kubernetes,
                    format!("cluster[{}]", other.cluster().map(|c| c.key.as_str()).unwrap_or_default()),
                ),
            };
            let node = self.node(change.address.clone(), kind);
            let parent_kind = if kind == NodeKind::RegistryObject { NodeKind::Registry } else { NodeKind::Cluster };
            let parent = self.node(parent, parent_kind);
            self.graph.update_edge(parent, node, ());
        }
        for change in changes {
            let Some(&node) = self.index.get(&change.address) else { continue };
            for dependency in &change.depends_on {
                if let Some(&from) = self.index.get(dependency) {
                    self.graph.update_edge(from, node, ());
                }
            }
        }
    }

    /// Addresses in an order where dependencies come first, or the cycle's member.
    pub fn order(&self) -> Result<Vec<String>, String> {
        toposort(&self.graph, None)
            .map(|order| order.into_iter().map(|i| self.graph[i].address.clone()).collect())
            .map_err(|cycle| self.graph[cycle.node_id()].address.clone())
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph acrlink {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        let mut nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
        nodes.sort_by(|a, b| self.graph[*a].address.cmp(&self.graph[*b].address));
        for index in &nodes {
            let node = &self.graph[*index];
            let shape = match node.kind {
                NodeKind::Cluster => "box",
                NodeKind::Registry => "cylinder",
                NodeKind::RoleAssignment => "ellipse",
                NodeKind::Kubernetes => "note",
                NodeKind::RegistryObject => "component",
            };
            out.push_str(&format!("  \"{}\" [shape={shape}];\n", escape(&node.address)));
        }
        let mut edges: Vec<(String, String)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (self.graph[a].address.clone(), self.graph[b].address.clone()))
            .collect();
        edges.sort();
        for (from, to) in edges {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", escape(&from), escape(&to)));
        }
        out.push_str("}\n");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkResult<T> {
    Succeeded(T),
    Failed(T),
    /// Not attempted because `because` (an address) failed upstream.
    Skipped {
        because: String,
    },
}

/// Runs `run` for every change, at most `parallelism` at once, in dependency order. Returns
/// one result per change, in the changes' order. Errors if the dependencies form a cycle.
pub async fn walk<'a, T, F, Fut>(
    changes: &'a [Change],
    parallelism: usize,
    run: F,
) -> Result<Vec<WalkResult<T>>, String>
where
    F: Fn(&'a Change) -> Fut,
    Fut: Future<Output = Result<T, T>>,
{
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..changes.len()).map(|i| graph.add_node(i)).collect();
    let by_address: BTreeMap<&str, usize> = changes.iter().enumerate().map(|(i, c)| (c.address.as_str(), i)).collect();
    for (i, change) in changes.iter().enumerate() {
        for dependency in &change.depends_on {
            let Some(&d) = by_address.get(dependency.as_str()) else { continue };
            match (changes[d].action == Action::Delete, change.action == Action::Delete) {
                // Deleting runs backwards: the dependent goes first.
                (true, true) => {
                    graph.update_edge(nodes[i], nodes[d], ());
                }
                // Creating and updating follow dependencies; so does deleting something only
                // after the change that stops using it.
                (false, _) => {
                    graph.update_edge(nodes[d], nodes[i], ());
                }
                (true, false) => {}
            }
        }
    }
    if let Err(cycle) = toposort(&graph, None) {
        return Err(changes[graph[cycle.node_id()]].address.clone());
    }

    let mut waiting: Vec<usize> =
        nodes.iter().map(|n| graph.neighbors_directed(*n, Direction::Incoming).count()).collect();
    let mut results: Vec<Option<WalkResult<T>>> = (0..changes.len()).map(|_| None).collect();
    let mut ready: Vec<usize> = (0..changes.len()).filter(|i| waiting[*i] == 0).collect();
    ready.reverse();
    let mut running = FuturesUnordered::new();
    let parallelism = parallelism.max(1);
    loop {
        while running.len() < parallelism {
            let Some(i) = ready.pop() else { break };
            let future = run(&changes[i]);
            running.push(async move { (i, future.await) });
        }
        let Some((i, outcome)) = running.next().await else { break };
        let failed = outcome.is_err();
        results[i] = Some(match outcome {
            Ok(t) => WalkResult::Succeeded(t),
            Err(t) => WalkResult::Failed(t),
        });
        if failed {
            // Skip everything downstream, naming this change as the root cause.
            let mut stack = vec![nodes[i]];
            while let Some(node) = stack.pop() {
                for next in graph.neighbors_directed(node, Direction::Outgoing) {
                    let j = graph[next];
                    if results[j].is_none() {
                        results[j] = Some(WalkResult::Skipped { because: changes[i].address.clone() });
                        stack.push(next);
                    }
                }
            }
        } else {
            for next in graph.neighbors_directed(nodes[i], Direction::Outgoing) {
                let j = graph[next];
                waiting[j] -= 1;
                if waiting[j] == 0 && results[j].is_none() {
                    ready.push(j);
                }
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(WalkResult::Skipped { because: "an unfinished dependency".into() }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Precondition, Resource};
    use crate::provider::RoleAssignmentSpec;

    fn change(address: &str, action: Action, depends_on: &[&str]) -> Change {
        Change {
            address: address.into(),
            action,
            reason: String::new(),
            precondition: Precondition::Absent,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            resource: Resource::RoleAssignment {
                role_name: String::new(),
                cluster: String::new(),
                registry: String::new(),
                spec: RoleAssignmentSpec {
                    scope: String::new(),
                    name: String::new(),
                    role_definition_id: String::new(),
                    principal_id: String::new(),
                    principal_type: String::new(),
                    description: String::new(),
                    condition: None,
                },
            },
        }
    }

    #[tokio::test]
    async fn failures_skip_dependents_and_deletes_run_backwards() {
        let changes = vec![
            change("a", Action::Create, &[]),
            change("b", Action::Create, &["a"]),
            change("c", Action::Create, &["b"]),
            change("x", Action::Delete, &[]),
            change("y", Action::Delete, &["x"]),
        ];
        let order = std::sync::Mutex::new(Vec::new());
        let results = walk(&changes, 4, |c| {
            order.lock().unwrap().push(c.address.clone());
            let fail = c.address == "a";
            async move { if fail { Err(()) } else { Ok(()) } }
        })
        .await
        .unwrap();
        assert_eq!(results[0], WalkResult::Failed(()));
        assert_eq!(results[1], WalkResult::Skipped { because: "a".into() });
        assert_eq!(results[2], WalkResult::Skipped { because: "a".into() });
        let order = order.into_inner().unwrap();
        let position = |a: &str| order.iter().position(|x| x == a).unwrap();
        assert!(position("y") < position("x"), "{order:?}");
    }

    #[tokio::test]
    async fn cycles_are_refused() {
        let changes = vec![change("a", Action::Create, &["b"]), change("b", Action::Create, &["a"])];
        let result = walk(&changes, 2, |_| async { Ok::<(), ()>(()) }).await;
        assert!(result.is_err());
    }
}
