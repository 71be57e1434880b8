//! The one integration-test binary: runs the real `acrlink` executable (see `support`), one
//! module per area.

mod az;
mod boundary;
mod cli;
mod engine;
mod examples;
mod graph_reads;
mod import;
mod pullsecret;
mod signin;
mod support;
mod validate;
mod verify;
