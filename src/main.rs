use clap::Parser;

fn main() {
    let cli = vital::cli::Cli::parse();
    let code = match vital::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            vital::cli::exit::FAILURE
        }
    };
    std::process::exit(code);
}
