//! Links `lade-init` without debug information. It is copied into a sealed memfd for
//! every `lade exec` and every `run --init` (the copy the container may see), so its
//! size is paid at each of those starts: debug information is most of its file and none
//! of what it runs. `lade` keeps its line tables.

fn main() {
    println!("cargo::rustc-link-arg-bin=lade-init=-Wl,--strip-debug");
    println!("cargo::rerun-if-changed=build.rs");
}
