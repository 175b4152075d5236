fn main() -> std::process::ExitCode {
    open_forensics::cli::main()
}
