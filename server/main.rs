//! `tianxia`: parses the command line and runs the command, mapping failures to exit
//! statuses (1: the command failed, 2: bad usage or configuration).

use std::process::ExitCode;

use clap::Parser;
use tianxia::{
    Failure, api, bench, check,
    cli::{BattleCommand, BenchCommand, Cli, Command, LogFormat},
    config, daemon, logging, matchup, replay, serve, simulate,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.log_format == LogFormat::Json;
    // A benchmark's own servers would log every connection it opens.
    let default_filter = match cli.command {
        Command::Bench(_) => "info,tianxia::access=warn",
        _ => "info",
    };
    let _log_guard = logging::init(cli.log_format, default_filter);
    let outcome = match cli.command {
        Command::Serve(args) => config::resolve(*args).and_then(serve::run),
        Command::Daemon(args) => {
            config::resolve_role(*args, config::Role::Daemon).and_then(daemon::run)
        }
        Command::Api(args) => config::resolve_role(*args, config::Role::Api).and_then(api::run),
        Command::Check { assets } => check::check(&assets),
        Command::Schema { kind, assets, out } => {
            check::schema(kind.as_deref(), &assets, out.as_deref())
        }
        Command::Battle(BattleCommand::Run { file, assets }) => {
            replay::run(&file, assets.as_deref())
        }
        Command::Battle(BattleCommand::Matchup(args)) => matchup::run(&args),
        Command::Bench(BenchCommand::Battle(options)) => bench::battle::battle(&options),
        Command::Bench(BenchCommand::Strategy(options)) => bench::strategy::strategy(&options),
        Command::Bench(BenchCommand::Flush(options)) => bench::flush::flush(&options),
        Command::Bench(BenchCommand::Commands(options)) => bench::commands::commands(&options),
        Command::Bench(BenchCommand::Ws(options)) => bench::ws::ws(&options),
        Command::Bench(BenchCommand::Reads(options)) => bench::reads::reads(&options),
        Command::Bench(BenchCommand::All(options)) => bench::all::all(&options),
        Command::Bench(BenchCommand::WsClients(options)) => bench::ws::clients::clients(&options),
        Command::Simulate(args) => simulate::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Under JSON logs, the failure is a log line like the others.
        Err(failure) if json => {
            match &failure {
                Failure::Assets(errors) => {
                    for error in &errors.0 {
                        tracing::error!(%error, "designer data error");
                    }
                    tracing::error!(errors = errors.0.len(), "errors in the designer data");
                }
                other => tracing::error!(error = %other, "tianxia stopped"),
            }
            failure.exit_code()
        }
        Err(failure) => {
            match &failure {
                Failure::Assets(errors) => {
                    for error in &errors.0 {
                        eprintln!("{error}");
                    }
                    let n = errors.0.len();
                    eprintln!(
                        "{n} error{} in the designer data",
                        if n == 1 { "" } else { "s" }
                    );
                }
                other => eprintln!("tianxia: {other}"),
            }
            failure.exit_code()
        }
    }
}
