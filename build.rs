//! Links GCC's unwinder statically (what C's -static-libgcc does): Rust's std on glibc otherwise loads
//! libgcc_s.so.1, whose start-up CPU probing made up ~8% of a helper exec here; without it newuidmap
//! runs ~10% faster (docs/benchmarks.md). With the unwinder's symbols defined, --as-needed drops
//! libgcc_s. Only on glibc, where libgcc_eh.a ships with gcc.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}
