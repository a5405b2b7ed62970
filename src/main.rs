//! The `codegen-orchestrator` binary: parse the command line, load the configuration, run
//! the subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use codegen_orchestrator::config::{self, Config, ConfigSource, LoadedConfig};
use codegen_orchestrator::deps::DependencyParser;
use codegen_orchestrator::domain::RepoName;
use codegen_orchestrator::github::GitHub;
use codegen_orchestrator::{plan, runtime, simulate, telemetry};

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
    /// Show the dependency graph of a set of issues, its cycles and the launch order.
    ///
    /// Exits 0 when the graph is valid, 2 when it has a cycle or an unknown reference
    /// (after printing everything found), 1 on bad input.
    Plan {
        /// Read the repository's open issues with the trigger label, and their blockers,
        /// from GitHub (token from github.token / GITHUB_TOKEN, or the App's credentials).
        #[arg(long, value_name = "OWNER/REPO", required_unless_present = "issues")]
        repo: Option<RepoName>,
        /// A JSON file in the GitHub REST "list repository issues" format (an array of issue
        /// objects); issues with the trigger label are managed, the others known blockers.
        #[arg(long, value_name = "FILE", conflicts_with = "repo")]
        issues: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Agents in the pool the waves assume (default: codegen.max_concurrent_agents).
        #[arg(long)]
        agents: Option<usize>,
    },
    /// Run the scheduler on a virtual clock with fake agents and measure the makespan
    /// against its lower bound.
    Simulate {
        #[command(flatten)]
        source: SimSource,
        /// Seed of the random graph.
        #[arg(long, default_value_t = 1, requires = "random")]
        seed: u64,
        /// Agents (default: the graph file's, or codegen.max_concurrent_agents).
        #[arg(long)]
        agents: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// `ready-queue` (the orchestrator's) or `waves` (batches, for comparison).
        #[arg(long, value_enum, default_value_t = SimDispatch::ReadyQueue)]
        dispatch: SimDispatch,
        /// Tell the scheduler each task's duration as its estimate (by default it sees
        /// only the graph's shape, as with issues that carry no estimate).
        #[arg(long)]
        estimates: bool,
    },
}

/// How `simulate` dispatches launches.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SimDispatch {
    ReadyQueue,
    Waves,
}

/// Where `simulate` takes its graph from.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct SimSource {
    /// A JSON file: `{"agents": 10, "tasks": [{"id": "12", "duration_secs": 1800, "deps": ["7"]}]}`.
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// A layered random graph of N tasks with lognormal durations.
    #[arg(long, value_name = "N")]
    random: Option<usize>,
}

/// How `plan` prints its report.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Mermaid,
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => serve(loaded).map(|()| ExitCode::SUCCESS),
        Command::Plan {
            repo,
            issues,
            format,
            agents,
        } => plan(
            &loaded.config,
            repo.as_ref(),
            issues.as_deref(),
            format,
            agents,
        ),
        Command::Simulate {
            source,
            seed,
            agents,
            json,
            dispatch,
            estimates,
        } => simulate(
            &loaded.config,
            &source,
            seed,
            agents,
            json,
            (dispatch, estimates),
        ),
    };
    match result {
        Ok(code) => code,
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

fn plan(
    config: &Config,
    repo: Option<&RepoName>,
    file: Option<&Path>,
    format: PlanFormat,
    agents: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let parser = DependencyParser::new(&config.github.web_host());
    let label = &config.orchestrator.trigger_label;
    let issues = match (repo, file) {
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            plan::parse_issues(&text).map_err(|err| anyhow!("{}: {err}", file.display()))?
        }
        (Some(repo), None) => {
            telemetry::init_logging();
            let runtime = tokio::runtime::Runtime::new()?;
            runtime
                .block_on(async {
                    let github = GitHub::for_repository(&config.github, repo).await?;
                    plan::gather_from_github(&github, repo, label, &parser).await
                })
                .with_context(|| format!("reading {repo} from GitHub"))?
        }
        (None, None) => anyhow::bail!("give --repo OWNER/REPO or --issues FILE"),
    };
    let agents = agents.unwrap_or(config.codegen.max_concurrent_agents as usize);
    let report = plan::plan(&issues, label, &parser, agents);
    print!(
        "{}",
        match format {
            PlanFormat::Text => report.to_text(),
            PlanFormat::Json => report.to_json(),
            PlanFormat::Mermaid => report.to_mermaid(),
        }
    );
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn simulate(
    config: &Config,
    source: &SimSource,
    seed: u64,
    agents: Option<usize>,
    json: bool,
    (dispatch, estimates): (SimDispatch, bool),
) -> anyhow::Result<ExitCode> {
    let default_agents = config.codegen.max_concurrent_agents as usize;
    let mut graph = match (&source.graph, source.random) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            serde_json::from_str::<simulate::SimGraph>(&text)
                .map_err(|err| anyhow!("{}: {err}", file.display()))?
        }
        (None, Some(tasks)) => simulate::random_graph(tasks, seed, default_agents),
        (None, None) => anyhow::bail!("give --graph FILE or --random N"),
    };
    if let Some(agents) = agents {
        graph.agents = agents;
    }
    let dispatch = match dispatch {
        SimDispatch::ReadyQueue => simulate::Dispatch::ReadyQueue,
        SimDispatch::Waves => simulate::Dispatch::Waves,
    };
    let options = simulate::SimOptions {
        dispatch,
        estimates,
    };
    let report = simulate::simulate_with(&graph, options)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(loaded: LoadedConfig) -> anyhow::Result<()> {
    telemetry::init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(runtime::serve(loaded.config))
}
