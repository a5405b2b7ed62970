//! The `codegen-orchestrator` binary: parse the command line, load the configuration, run
//! the subcommand.

use std::io::{ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{CommandFactory, Parser, Subcommand};
use codegen_orchestrator::config::{self, Config, LoadedConfig};
use codegen_orchestrator::deps::DependencyParser;
use codegen_orchestrator::domain::RepoName;
use codegen_orchestrator::engine::durations::Durations;
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
    #[command(
        override_usage = "codegen-orchestrator plan (--repo OWNER/REPO | --issues FILE) [OPTIONS]"
    )]
    Plan {
        #[command(flatten)]
        source: PlanSource,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Agents in the pool the waves assume (default: codegen.max_concurrent_agents).
        #[arg(long, value_name = "N", value_parser = at_least_one)]
        agents: Option<usize>,
        /// Run durations to forecast with: a JSON object of repositories, each with the
        /// seconds its finished runs took (`{"acme/api": [1800, 2400]}`). Default: the
        /// figures the bot learned, read from `storage.url` when that database exists.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
    },
    /// Run the bot's engine on a virtual clock with fake agents: what it would have done,
    /// and the makespan against its lower bound.
    #[command(group(clap::ArgGroup::new("seeded").args(["random", "fail_rate"]).multiple(true)))]
    Simulate {
        #[command(flatten)]
        source: SimSource,
        /// Seed of the random graph and of the failures.
        #[arg(long, default_value_t = 1, requires = "seeded")]
        seed: u64,
        /// Agents (default: the graph file's, or codegen.max_concurrent_agents).
        #[arg(long, value_name = "N", value_parser = at_least_one)]
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
        /// The probability (0 to 1) that a run fails, drawn with --seed.
        #[arg(long, value_name = "P", value_parser = probability)]
        fail_rate: Option<f64>,
        /// Retry a failed run up to N times (default: codegen.retry_failed_runs).
        #[arg(long, value_name = "N")]
        retry_failed: Option<u32>,
        /// With --random: the fraction (0 to 1) of the tasks that each discover one or two
        /// more while they run, drawn with --seed (default 0: none).
        #[arg(
            long,
            value_name = "R",
            value_parser = fraction,
            requires = "random",
            // `requires` alone lets `--graph` through: clap takes a conflicting argument
            // of the same group as the requirement met.
            conflicts_with = "graph"
        )]
        discovery_rate: Option<f64>,
        /// With --random: measure the forecast instead. Graphs of N tasks spread over four
        /// repositories with different mean durations are worked through with learned
        /// durations; the forecast made at the start and after 25 % and 50 % of the tasks
        /// is compared with the real finish, and the makespans with the shape only and
        /// with known durations.
        #[arg(long, requires = "random", conflicts_with = "graph")]
        forecast: bool,
        /// With --forecast: how many graphs (seeds --seed, --seed + 1, ...).
        #[arg(long, value_name = "K", default_value_t = 20, requires = "forecast")]
        graphs: usize,
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
    /// A JSON file: `{"agents": 10, "tasks": [{"id": "12", "duration_secs": 1800, "deps": ["7"]}]}`;
    /// a task may list tasks it discovers while it runs: `"discovers": [{"at": 0.5, "id":
    /// "13", "duration_secs": 600, "deps": ["12"]}]` (`at`: the fraction of its run).
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// A layered random graph of N tasks with lognormal durations.
    #[arg(long, value_name = "N")]
    random: Option<usize>,
}

/// Where `plan` takes its issues from: exactly one of the two. Not `required` in clap's
/// sense, whose error lists the usage pattern; `main` says "one of ... is required".
#[derive(clap::Args)]
#[group(multiple = false)]
struct PlanSource {
    /// Read the repository's open issues with the trigger label, and their blockers,
    /// from GitHub (token from github.token / GITHUB_TOKEN, or the App's credentials).
    #[arg(long, value_name = "OWNER/REPO")]
    repo: Option<RepoName>,
    /// A JSON file in the GitHub REST "list repository issues" format (an array of issue
    /// objects); issues with the trigger label are managed, the others known blockers.
    #[arg(long, value_name = "FILE")]
    issues: Option<PathBuf>,
}

/// A pool size: at least one agent, as `codegen.max_concurrent_agents` must be.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (no agent could run anything)".into()),
        Ok(agents) => Ok(agents),
        Err(_) => Err(format!("`{text}` is not a number of agents")),
    }
}

/// A probability: a number from 0 to 1.
fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be between 0 and 1 (a probability: 0.1 fails one run in ten)".into()),
        Err(_) => Err(format!("`{text}` is not a number between 0 and 1")),
    }
}

/// A share of the tasks: a number from 0 to 1.
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("must be between 0 and 1 (a share of the tasks: 0.2 is one in five)".into()),
        Err(_) => Err(format!("`{text}` is not a number between 0 and 1")),
    }
}

/// How `plan` prints its report.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Mermaid,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(Cli {
            command:
                Command::Plan {
                    source:
                        PlanSource {
                            repo: None,
                            issues: None,
                        },
                    ..
                },
            ..
        }) => {
            let mut command = Cli::command();
            let plan = command
                .find_subcommand_mut("plan")
                .expect("plan is a subcommand");
            return usage_error(plan.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "one of --repo OWNER/REPO or --issues FILE is required",
            ));
        }
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let loaded = match config::load(cli.config.as_deref(), &config::process_env()) {
        Ok(loaded) => loaded,
        Err(err) => {
            print_error(&format!("error: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::CheckConfig => {
            emit(&config::check_config_report(&loaded)).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve => serve(loaded).map(|()| ExitCode::SUCCESS),
        Command::Plan {
            source,
            format,
            agents,
            history,
        } => plan(
            &loaded.config,
            source.repo.as_ref(),
            source.issues.as_deref(),
            format,
            agents,
            history.as_deref(),
        ),
        Command::Simulate {
            source,
            seed,
            agents,
            json,
            forecast: true,
            graphs,
            ..
        } => {
            let tasks = source.random.unwrap_or_default();
            let agents = agents.unwrap_or(loaded.config.codegen.max_concurrent_agents as usize);
            let report = simulate::forecast_accuracy(tasks, agents, graphs.max(1), seed);
            emit(&if json {
                serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
            } else {
                simulate::accuracy_text(&report)
            })
            .map(|()| ExitCode::SUCCESS)
        }
        Command::Simulate {
            source,
            seed,
            agents,
            json,
            dispatch,
            estimates,
            fail_rate,
            retry_failed,
            discovery_rate,
            forecast: false,
            ..
        } => simulate(
            &loaded.config,
            &source,
            agents,
            json,
            discovery_rate.unwrap_or(0.0),
            simulate::SimOptions {
                dispatch: match dispatch {
                    SimDispatch::ReadyQueue => simulate::Dispatch::ReadyQueue,
                    SimDispatch::Waves => simulate::Dispatch::Waves,
                },
                estimates,
                fail_rate: fail_rate.unwrap_or(0.0),
                retry_failed: retry_failed.unwrap_or(loaded.config.codegen.retry_failed_runs),
                seed,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            print_error(&format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message (help, version, or what is wrong with the arguments). A wrong
/// argument exits 1, not clap's 2: `plan` exits 2 for a graph with a cycle, and a typo must
/// not read as one.
fn usage_error(err: clap::Error) -> ExitCode {
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes a subcommand's output to stdout. A reader that went away (`... | head`) ends the
/// output quietly, as ripgrep does: the rest is not wanted, and the exit status still says
/// how the command went (`println!` would panic instead).
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing to standard output"),
    }
}

/// Writes an error line to stderr; a closed stderr leaves nobody to tell, so it is not
/// another error (`eprintln!` would panic).
fn print_error(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn plan(
    config: &Config,
    repo: Option<&RepoName>,
    file: Option<&Path>,
    format: PlanFormat,
    agents: Option<usize>,
    history: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let expectations = plan::Expectations {
        learned: learned_durations(config, history)?,
        default_minutes: config.orchestrator.default_estimate,
        launches_per_minute: config.codegen.creations_per_minute as usize,
    };
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
    let report = plan::plan(&issues, label, &parser, agents, &expectations);
    emit(&match format {
        PlanFormat::Text => report.to_text(),
        PlanFormat::Json => report.to_json(),
        PlanFormat::Mermaid => report.to_mermaid(),
    })?;
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The run durations `plan` forecasts with: `--history`'s, else those the bot learned in
/// the configured store (when it exists), else none.
fn learned_durations(config: &Config, history: Option<&Path>) -> anyhow::Result<Durations> {
    let mut durations = Durations::default();
    if let Some(file) = history {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let runs: std::collections::BTreeMap<RepoName, Vec<u64>> = serde_json::from_str(&text)
            .with_context(|| {
                format!(
                    "{}: expected a JSON object of repositories, each with the seconds its \
                     finished runs took, like {{\"acme/api\": [1800, 2400]}}",
                    file.display()
                )
            })?;
        for (repo, secs) in runs {
            for secs in secs {
                durations.record(&repo, [], secs);
            }
        }
        return Ok(durations);
    }
    let url = &config.storage.url;
    let runtime = tokio::runtime::Runtime::new()?;
    let prefix = codegen_orchestrator::engine::durations::SETTING_PREFIX;
    match runtime.block_on(codegen_orchestrator::store::peek_settings(url, prefix)) {
        Ok(settings) => {
            for (key, value) in settings {
                durations.restore(&key, &value);
            }
        }
        Err(err) => print_error(&format!(
            "note: the learned run durations could not be read ({err}); forecasting with \
             orchestrator.default_estimate"
        )),
    }
    Ok(durations)
}

fn simulate(
    config: &Config,
    source: &SimSource,
    agents: Option<usize>,
    json: bool,
    discovery_rate: f64,
    options: simulate::SimOptions,
) -> anyhow::Result<ExitCode> {
    let seed = options.seed;
    let default_agents = config.codegen.max_concurrent_agents as usize;
    let mut graph = match (&source.graph, source.random) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            simulate::SimGraph::from_json(&text, default_agents)
                .map_err(|err| anyhow!("{}: {err}", file.display()))?
        }
        (None, Some(tasks)) => {
            simulate::random_graph_discovering(tasks, seed, default_agents, discovery_rate)?
        }
        (None, None) => anyhow::bail!("give --graph FILE or --random N"),
    };
    if let Some(agents) = agents {
        graph.agents = agents;
    }
    let report = if std::io::stderr().is_terminal() {
        let mut progress = Progress::new();
        let report = simulate::simulate_observed(&graph, options, &mut |done, total| {
            progress.show(done, total);
        });
        progress.finish();
        report?
    } else {
        simulate::simulate_with(&graph, options)?
    };
    if json {
        emit(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        emit(&report.to_text())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `simulate`'s progress line on a terminal's stderr: shown once a run has taken a
/// moment, redrawn a few times a second, erased at the end so the report stands alone.
struct Progress {
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// Runs shorter than this show nothing.
    const QUIET_FOR: Duration = Duration::from_millis(500);
    const EVERY: Duration = Duration::from_millis(200);

    fn new() -> Self {
        Self {
            started: Instant::now(),
            last: None,
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        let now = Instant::now();
        let due = match self.last {
            None => now - self.started >= Self::QUIET_FOR,
            Some(last) => now - last >= Self::EVERY,
        };
        if !due {
            return;
        }
        self.last = Some(now);
        let elapsed = (now - self.started).as_secs_f64();
        let line = format!(
            "\rsimulating: {done} of {total} tasks done ({})",
            simulate::human_duration(elapsed)
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn finish(self) {
        if self.last.is_some() {
            // Back to the start of the line, and erase it.
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
        }
    }
}

fn serve(loaded: LoadedConfig) -> anyhow::Result<()> {
    telemetry::init_logging();
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(runtime::serve(loaded.config))
}

/// Raises the open-files soft limit to the hard limit: every connection is a file, and the
/// usual soft limit (1024, or less) would stop `accept` long before memory runs short. The
/// server caps its connections below whatever limit it ends up with.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct they are given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read != 0 {
        let err = std::io::Error::last_os_error();
        tracing::warn!(error = %err, "cannot read the open-files limit");
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::info!(
            from = limit.rlim_cur,
            to = raised.rlim_cur,
            "raised the open-files soft limit to the hard limit"
        );
    } else {
        let err = std::io::Error::last_os_error();
        tracing::warn!(error = %err, soft = limit.rlim_cur, "cannot raise the open-files limit");
    }
}
