//! `lade-init`: the container's init, which lade starts in each new sandbox (see
//! `lade::exec::run_init`). A binary of its own, installed beside `lade`, because it
//! starts once per container: it links only the init's code, so the loader maps and
//! relocates a fraction of what lade's whole binary needs.
//!
//! Its `main` is the C one: Rust's start-up (a read of `/proc/self/maps` for the main
//! thread's stack guard, an alternate signal stack, SIGPIPE ignored) is work the init
//! would only undo or never use before it execs the container's process. Under
//! `cargo test` the harness's own `main` stands in (it finds no tests here): the init is
//! tested through lade's runs.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    lade::exec::run_init()
}
