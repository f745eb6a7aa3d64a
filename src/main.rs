//! The `toolforge` binary: the command line over the runtime (`toolforge-agent`)
//! and the training pipeline (`toolforge-trainer`).

mod cli;

fn main() -> std::process::ExitCode {
    // candle's CPU worker pool spin-waits between small ops; one candle thread with a
    // rayon pool per core trains the router about 1.8x faster. Set before any thread
    // starts, and only when the user has not chosen.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", cores.to_string());
    }
    cli::main()
}
