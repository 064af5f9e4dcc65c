//! The `snakkaz-pay` binary: everything lives in the library.

// glibc's allocator kept memory freed after bursts (a catch-up, 100,000 payments created)
// as resident; mimalloc returns freed pages to the system (see README, chain at scale).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    snakkaz_pay::cli::main()
}
