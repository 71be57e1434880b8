//! The one dependency graph (petgraph), built from the plan: every change and every unchanged
//! resource, hung off its cluster or registry, with the ordering edges diff set between
//! changes. The same graph is checked for cycles, printed by `acrlink graph` and walked by
//! apply: a change starts when the changes it waits for have succeeded, and everything
//! downstream of a failure is skipped, naming the root cause once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::model::{Address, Kind};
use crate::plan::{Change, Plan};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// A cluster or registry: what resources hang off.
    Anchor,
    /// The plan's change at this index.
    Change(usize),
    /// A resource that needs nothing.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct GraphNode {
    pub address: Address,
    pub state: NodeState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// A cluster or registry holds the resource.
    Holds,
    /// The source change must succeed before the target change starts.
    Before,
}

pub struct ResourceGraph {
    pub graph: DiGraph<GraphNode, Edge>,
    index: HashMap<Address, NodeIndex>,
}

impl ResourceGraph {
    fn node(&mut self, address: &Address, state: NodeState) -> NodeIndex {
        if let Some(&index) = self.index.get(address) {
            // A change outranks the anchor or unchanged entry made for the same address.
            if state != NodeState::Anchor && self.graph[index].state == NodeState::Anchor {
                self.graph[index].state = state;
            }
            return index;
        }
        let index = self.graph.add_node(GraphNode { address: address.clone(), state });
        self.index.insert(address.clone(), index);
        index
    }

    /// Hangs a resource off its registry and, for grants to a cluster of the file, its cluster.
    fn hang(&mut self, address: &Address, node: NodeIndex) {
        let mut parents: Vec<Address> = address.parent().into_iter().collect();
        if let Some(cluster) = address.grant_cluster() {
            parents.push(Address::Cluster(cluster.to_string()));
        }
        for parent in parents {
            let from = self.node(&parent, NodeState::Anchor);
            self.graph.add_edge(from, node, Edge::Holds);
        }
    }

    /// The graph of a plan; `anchors` adds clusters and registries that hold nothing yet.
    pub fn from_plan(plan: &Plan, anchors: impl IntoIterator<Item = Address>) -> ResourceGraph {
        let mut graph = ResourceGraph { graph: DiGraph::new(), index: HashMap::new() };
        for anchor in anchors {
            graph.node(&anchor, NodeState::Anchor);
        }
        for (i, change) in plan.changes.iter().enumerate() {
            let node = graph.node(&change.address, NodeState::Change(i));
            graph.hang(&change.address, node);
        }
        for item in &plan.unchanged {
            if !graph.index.contains_key(&item.address) {
                let node = graph.node(&item.address, NodeState::Unchanged);
                graph.hang(&item.address, node);
            }
        }
        for change in &plan.changes {
            let to = graph.index[&change.address];
            for dependency in &change.depends_on {
                // Waiting on something that needs no change is waiting on nothing.
                if let Some(&from) = graph.index.get(dependency)
                    && matches!(graph.graph[from].state, NodeState::Change(_))
                {
                    graph.graph.update_edge(from, to, Edge::Before);
                }
            }
        }
        graph
    }

    /// Addresses in an order where dependencies come first, or a member of the cycle.
    pub fn order(&self) -> Result<Vec<Address>, Address> {
        toposort(&self.graph, None)
            .map(|order| order.into_iter().map(|i| self.graph[i].address.clone()).collect())
            .map_err(|cycle| self.graph[cycle.node_id()].address.clone())
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph acrlink {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        let mut nodes: Vec<&GraphNode> = self.graph.node_weights().collect();
        nodes.sort_by(|a, b| a.address.cmp(&b.address));
        for node in nodes {
            let shape = match node.address.kind() {
                Kind::Cluster => "box",
                Kind::Registry => "cylinder",
                Kind::RoleAssignment => "ellipse",
                Kind::Namespace | Kind::Secret | Kind::ServiceAccount => "note",
                Kind::RegistryToken | Kind::ScopeMap => "component",
            };
            let style = if matches!(node.state, NodeState::Change(_)) { ", style=bold" } else { "" };
            out.push_str(&format!("  \"{}\" [shape={shape}{style}];\n", escape(&node.address.to_string())));
        }
        let mut edges: Vec<(String, String, Edge)> = self
            .graph
            .edge_references()
            .map(|e| {
                (self.graph[e.source()].address.to_string(), self.graph[e.target()].address.to_string(), *e.weight())
            })
            .collect();
        edges.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        edges.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        for (from, to, edge) in edges {
            let style = if edge == Edge::Before { " [style=dashed]" } else { "" };
            out.push_str(&format!("  \"{}\" -> \"{}\"{style};\n", escape(&from), escape(&to)));
        }
        out.push_str("}\n");
        out
    }

    /// The changes each change waits for, and the changes waiting for it (by plan index).
    fn change_edges(&self, changes: usize) -> (Vec<usize>, Vec<Vec<usize>>) {
        let mut waiting = vec![0; changes];
        let mut next = vec![Vec::new(); changes];
        for edge in self.graph.edge_references().filter(|e| *e.weight() == Edge::Before) {
            if let (NodeState::Change(from), NodeState::Change(to)) =
                (self.graph[edge.source()].state, self.graph[edge.target()].state)
            {
                waiting[to] += 1;
                next[from].push(to);
            }
        }
        (waiting, next)
    }

    /// Runs `run` for every change of the plan this graph was built from, at most
    /// `parallelism` at once, in dependency order. Returns one result per change, in the
    /// changes' order. Errors with a cycle's member if the dependencies form one.
    pub async fn walk<'a, T, F, Fut>(
        &self,
        changes: &'a [Change],
        parallelism: usize,
        run: F,
    ) -> Result<Vec<WalkResult<T>>, Address>
    where
        F: Fn(&'a Change) -> Fut,
        Fut: Future<Output = Result<T, T>>,
    {
        self.walk_until(changes, parallelism, &AtomicBool::new(false), run).await
    }

    /// `walk`, but once `stop` is set no further change starts: those in flight finish, and
    /// every change not started is `NotStarted` (an interrupted apply).
    pub async fn walk_until<'a, T, F, Fut>(
        &self,
        changes: &'a [Change],
        parallelism: usize,
        stop: &AtomicBool,
        run: F,
    ) -> Result<Vec<WalkResult<T>>, Address>
    where
        F: Fn(&'a Change) -> Fut,
        Fut: Future<Output = Result<T, T>>,
    {
        self.order()?;
        let (mut waiting, next) = self.change_edges(changes.len());
        let mut results: Vec<Option<WalkResult<T>>> = (0..changes.len()).map(|_| None).collect();
        let mut ready: Vec<usize> = (0..changes.len()).filter(|i| waiting[*i] == 0).collect();
        ready.reverse();
        let mut running = FuturesUnordered::new();
        let parallelism = parallelism.max(1);
        loop {
            while running.len() < parallelism && !stop.load(Ordering::SeqCst) {
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
                skip_downstream(i, &next, changes, &mut results);
                continue;
            }
            for &j in &next[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 && results[j].is_none() {
                    ready.push(j);
                }
            }
        }
        let unfinished = if stop.load(Ordering::SeqCst) {
            || WalkResult::NotStarted
        } else {
            || WalkResult::Skipped { because: None }
        };
        Ok(results.into_iter().map(|r| r.unwrap_or_else(unfinished)).collect())
    }
}

/// Marks everything downstream of the failed change `root` as skipped because of it.
fn skip_downstream<T>(root: usize, next: &[Vec<usize>], changes: &[Change], results: &mut [Option<WalkResult<T>>]) {
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        for &j in &next[i] {
            if results[j].is_none() {
                results[j] = Some(WalkResult::Skipped { because: Some(changes[root].address.clone()) });
                stack.push(j);
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkResult<T> {
    Succeeded(T),
    Failed(T),
    /// Not attempted because `because` failed upstream (None: a dependency never finished).
    Skipped {
        because: Option<Address>,
    },
    /// Not started because the walk was told to stop (an interrupted apply).
    NotStarted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Precondition;
    use crate::plan::{Action, Resource, Unchanged};
    use crate::provider::kubernetes::ClusterTarget;

    fn change(address: &str, action: Action, depends_on: &[&str]) -> Change {
        let address: Address = address.parse().unwrap();
        let Address::Secret { cluster, namespace, name } = &address else { panic!("a secret address") };
        Change {
            address: address.clone(),
            action,
            reason: crate::model::Reason::SecretUnwanted,
            precondition: Precondition::Absent,
            depends_on: depends_on.iter().map(|s| s.parse().unwrap()).collect(),
            before: None,
            after: None,
            resource: Resource::PullSecret {
                cluster: ClusterTarget { key: cluster.clone(), id: String::new(), kube_context: None },
                namespace: namespace.clone(),
                name: name.clone(),
                entries: Vec::new(),
                sensitive_change: false,
            },
        }
    }

    fn plan(changes: Vec<Change>, unchanged: &[&str]) -> Plan {
        Plan {
            format_version: crate::plan::PLAN_FORMAT_VERSION,
            acrlink_version: String::new(),
            config_path: String::new(),
            config_digest: String::new(),
            owner: "default".into(),
            summary: Plan::summarize(&changes),
            changes,
            unchanged: unchanged
                .iter()
                .map(|a| Unchanged { address: a.parse().unwrap(), reason: crate::model::InPlace::SecretInPlace })
                .collect(),
            warnings: Vec::new(),
            errors: Vec::new(),
            blocked: Vec::new(),
        }
    }

    #[tokio::test]
    async fn failures_skip_dependents_and_order_edges_hold_for_deletes_too() {
        let changes = vec![
            change("secret[c/n/a]", Action::Create, &[]),
            change("secret[c/n/b]", Action::Create, &["secret[c/n/a]"]),
            change("secret[c/n/c]", Action::Create, &["secret[c/n/b]"]),
            change("secret[c/n/x]", Action::Delete, &["secret[c/n/y]"]),
            change("secret[c/n/y]", Action::Update, &[]),
        ];
        let plan = plan(changes, &[]);
        let graph = ResourceGraph::from_plan(&plan, []);
        let order = std::sync::Mutex::new(Vec::new());
        let results = graph
            .walk(&plan.changes, 4, |c| {
                order.lock().unwrap().push(c.address.to_string());
                let fail = c.address == "secret[c/n/a]";
                async move { if fail { Err(()) } else { Ok(()) } }
            })
            .await
            .unwrap();
        let a: Address = "secret[c/n/a]".parse().unwrap();
        assert_eq!(results[0], WalkResult::Failed(()));
        assert_eq!(results[1], WalkResult::Skipped { because: Some(a.clone()) });
        assert_eq!(results[2], WalkResult::Skipped { because: Some(a) });
        let order = order.into_inner().unwrap();
        let position = |a: &str| order.iter().position(|x| x == a).unwrap();
        assert!(position("secret[c/n/y]") < position("secret[c/n/x]"), "a delete waits for its edge: {order:?}");
    }

    #[tokio::test]
    async fn a_failed_change_skips_the_delete_that_waits_for_it() {
        let plan = plan(
            vec![
                change("secret[c/n/x]", Action::Delete, &["secret[c/n/y]"]),
                change("secret[c/n/y]", Action::Update, &[]),
            ],
            &[],
        );
        let graph = ResourceGraph::from_plan(&plan, []);
        let results = graph
            .walk(&plan.changes, 2, |c| {
                let fail = c.action == Action::Update;
                async move { if fail { Err(()) } else { Ok(()) } }
            })
            .await
            .unwrap();
        assert!(matches!(results[0], WalkResult::Skipped { .. }), "{results:?}");
    }

    #[tokio::test]
    async fn cycles_are_refused() {
        let plan = plan(
            vec![
                change("secret[c/n/a]", Action::Create, &["secret[c/n/b]"]),
                change("secret[c/n/b]", Action::Create, &["secret[c/n/a]"]),
            ],
            &[],
        );
        let graph = ResourceGraph::from_plan(&plan, []);
        assert!(graph.order().is_err());
        let result = graph.walk(&plan.changes, 2, |_| async { Ok::<(), ()>(()) }).await;
        assert!(result.is_err());
    }

    #[test]
    fn unchanged_resources_are_nodes_hung_off_their_cluster_and_registry() {
        let plan = plan(
            vec![change("secret[c/n/a]", Action::Create, &[])],
            &["role_assignment[c/acr1]", "secret[c/n/b]", "registry_token[acr1/t]"],
        );
        let dot = ResourceGraph::from_plan(&plan, [Address::Cluster("idle".into())]).to_dot();
        for line in [
            "\"cluster[idle]\" [shape=box];",
            "\"secret[c/n/a]\" [shape=note, style=bold];",
            "\"secret[c/n/b]\" [shape=note];",
            "\"cluster[c]\" -> \"role_assignment[c/acr1]\";",
            "\"registry[acr1]\" -> \"role_assignment[c/acr1]\";",
            "\"registry[acr1]\" -> \"registry_token[acr1/t]\";",
            "\"cluster[c]\" -> \"secret[c/n/b]\";",
        ] {
            assert!(dot.contains(line), "{line} in\n{dot}");
        }
    }
}
