//! The emulator's test suite, one binary: every behaviour is exercised over HTTPS as a client
//! would see it.

mod acr;
mod admin;
mod aks;
mod apps;
mod arm;
mod az_cli;
mod az_surface;
mod entra;
mod faults;
mod kube_rs;
mod kube_support;
mod kubeapi;
mod kubectl;
mod kubelet;
mod rbac;
mod real_server;
mod registry;
mod resource_graph;
mod scale;
mod shape;
mod sign_in;
mod support;
mod throughput;
mod tools;
mod world;
