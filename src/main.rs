//! The `kube-harden` binary: parses the arguments, sets the colours, loads the settings and
//! runs the command (the commands are in [`cli`]).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use kube_harden::config::Config;
use kube_harden::report::Settings;

use cli::args::{Color, Command, RepoCommand};
use cli::{check, completions, diff, explain, fix, man, pr, prove, shared};

/// Parsing allocates per scalar and per node on every core; mimalloc's per-thread pages beat
/// glibc's malloc at that (see the `mimalloc` line in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::args::parse();
    set_colours(cli.color);
    let code = match &cli.command {
        // These two describe the command line itself: no configuration file, no repository.
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Repo(command) => match shared::settings(&cli, command.paths()) {
            Ok((settings, config)) => {
                // Ctrl-C or SIGTERM leaves no engine running and no scratch copy behind.
                kube_harden::process::stop_children_on_signals();
                run(command, &settings, &config)
            }
            Err(e) => {
                eprintln!("{}", console::style(e).red());
                2
            }
        },
    };
    ExitCode::from(code)
}

fn run(command: &RepoCommand, settings: &Settings, config: &Config) -> u8 {
    match command {
        RepoCommand::Diff(args) => diff::run(&args.paths, settings),
        RepoCommand::Fix(args) => fix::run(args, settings),
        RepoCommand::Explain(args) => explain::run(args, settings),
        RepoCommand::Check(args) => check::run(args, settings),
        RepoCommand::Pr(args) => pr::run(args, settings, config),
        RepoCommand::Prove(args) => prove::run(args, settings),
    }
}

fn set_colours(color: Color) {
    let on = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    console::set_colors_enabled(on);
    console::set_colors_enabled_stderr(
        on && std::io::stderr().is_terminal() || matches!(color, Color::Always),
    );
}
