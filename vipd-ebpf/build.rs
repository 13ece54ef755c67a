//! Building this crate needs the `bpf-linker` binary, which cargo does not know about:
//! rebuild when the linker changes so a new bpf-linker is picked up.
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => println!(
            "cargo:warning=bpf-linker not found on PATH: run `cargo xtask setup` to install it"
        ),
    }
}
