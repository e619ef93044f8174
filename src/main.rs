//! The `kube-harden` binary: parses the arguments, sets the colours, loads the settings and
//! runs the command (the commands are in [`cli`]).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use kube_harden::config::Config;
use kube_harden::report::Settings;

use cli::args::{Color, Command};
use cli::{check, diff, explain, fix, pr, shared};

/// Parsing allocates per scalar and per node on every core; mimalloc's per-thread pages beat
/// glibc's malloc at that (see the `mimalloc` line in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::args::parse();
    set_colours(cli.color);
    let code = match shared::settings(&cli, cli.command.paths()) {
        Ok((settings, config)) => run(&cli.command, &settings, &config),
        Err(e) => {
            eprintln!("{}", console::style(e).red());
            2
        }
    };
    ExitCode::from(code)
}

fn run(command: &Command, settings: &Settings, config: &Config) -> u8 {
    match command {
        Command::Diff(args) => diff::run(&args.paths, settings),
        Command::Fix(args) => fix::run(args, settings),
        Command::Explain(args) => explain::run(args, settings),
        Command::Check(args) => check::run(args, settings),
        Command::Pr(args) => pr::run(args, settings, config),
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
