use clap::Parser;

fn main() {
    let cli = vital::cli::Cli::parse();
    vital::cli::prepare_process(&cli);
    let code = match vital::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            vital::cli::exit::FAILURE
        }
    };
    std::process::exit(code);
}
