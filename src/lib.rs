//! lade: a daemonless, Docker-compatible container tool.
//!
//! A Dockerfile becomes an image, and an image becomes a running sandbox, through one
//! pipeline whose stages live in one module each: `parser` (Dockerfile text to typed
//! instructions), `graph` (stages and steps), `builder` (steps to layers, with a cache),
//! `layers` (deterministic tars, safe extraction, snapshots), `store` (the on-disk
//! content-addressed store), `exec` (the sandbox), `container` (container lifecycle),
//! `registry` (the distribution protocol) and `oci` (the image format's types).
//! `engine` is the application layer above them: one operation per user-level command
//! (`run`, `create`, `start`), each over a typed request. `cli` turns command lines into
//! those requests, or calls on the modules for the commands not moved there yet.

// The pest parser generated without `std` (see Cargo.toml) names `alloc`.
extern crate alloc;

pub mod archive;
pub mod builder;
pub mod cli;
pub mod compose;
pub mod container;
pub mod engine;
pub mod exec;
pub mod graph;
pub mod layers;
pub mod network;
pub mod oci;
pub mod parser;
pub mod registry;
pub mod store;
