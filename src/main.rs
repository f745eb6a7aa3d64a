//! The `toolforge` binary; all logic lives in `toolforge_agent::cli`.

fn main() -> std::process::ExitCode {
    toolforge_agent::cli::main()
}
