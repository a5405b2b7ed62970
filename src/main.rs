//! The `codegen-orchestrator` binary: parse the command line, load the configuration, run
//! the subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use codegen_orchestrator::config::{self, ConfigSource, LoadedConfig};
use codegen_orchestrator::{runtime, telemetry};

/// Turns GitHub issues into a dependency graph and works through it with Codegen agents.
#[derive(Parser)]
#[command(name = "codegen-orchestrator", version, about)]
struct Cli {
    /// Configuration file; `config.yaml` when present, else built-in defaults.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GitHub App: receive webhooks and process them.
    Serve,
    /// Print the effective configuration (secrets redacted), or what is wrong with it.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match config::load(cli.config.as_deref(), &config::process_env()) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::CheckConfig => {
            check_config(&loaded);
            Ok(())
        }
        Command::Serve => serve(loaded),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(loaded: &LoadedConfig) {
    match &loaded.source {
        ConfigSource::File(path) => println!("# configuration read from {}", path.display()),
        ConfigSource::Defaults => println!(
            "# {} not found: built-in defaults with environment overrides",
            config::DEFAULT_CONFIG_FILE
        ),
    }
    print!("{}", loaded.config.to_redacted_yaml());
    println!("# configuration is valid");
}

fn serve(loaded: LoadedConfig) -> anyhow::Result<()> {
    telemetry::init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(runtime::serve(loaded.config))
}
