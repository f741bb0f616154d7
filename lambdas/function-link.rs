//! The build script of every Lambda function crate (`build = "../../function-link.rs"`).
//!
//! Links the function's `bootstrap` at a fixed address (`-no-pie`). A position-independent
//! executable carries a relative relocation for every pointer in its static data (about
//! 33,000, 800 KB, in a function over the AWS SDK), which the loader reads and applies
//! before `main`, dirtying each page they land on: about 0.7 MiB and 0.7 ms of every cold
//! start (`scripts/bench-cold-start.py`). The cost is that the executable image is not
//! randomised in memory; the heap, the stack and the shared libraries still are, and
//! each Lambda execution environment runs one function in its own microVM.
fn main() {
    // Lambda runs Linux; elsewhere (a developer's macOS) the default link is kept.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
