//! The `snakkaz-pay` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    snakkaz_pay::cli::main()
}
