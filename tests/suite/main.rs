//! lade's integration tests, one module per subject, in one test binary: the crate and
//! its dependencies are linked once, not once per file, and the busybox base image is
//! made once per run (see `common::Lade::busybox`).
//!
//! Run one subject's tests with `cargo test --test suite <module>::`, e.g.
//! `cargo test --test suite cache::`.

mod common;

mod architecture;
mod build_outputs;
mod build_platforms;
mod build_run;
mod build_secrets;
mod cache;
mod compose;
mod conformance;
mod containers;
mod docker_behaviour;
mod docker_cli;
mod docker_images;
mod docker_volumes;
mod dry_run;
mod finish;
mod hardening;
mod health;
mod hostile;
mod images;
mod integrity;
mod network;
mod parser_fuzz;
mod refusals;
mod registry;
mod rootless;
mod run_flags;
mod sandbox;
mod security;
mod store;
mod templates;
mod update;
