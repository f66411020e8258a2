//! The command line: subcommand, positional arguments, the command's own options, and one
//! option per core setting (derived from `registrar::config::SETTINGS`, never listed here).
//!
//! Hand-written rather than a parser crate: the settings options are generated from the core's
//! table at run time (a derive-based parser could not list them without repeating the table),
//! the grammar is tiny, and every kilobyte of code is resident memory in a sidecar.

use std::ffi::OsString;

use registrar::config::{Settings, SETTINGS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    Register,
    Discover,
    Apps,
    Instance,
    Help,
    Version,
}

/// When the supervised service counts as ready (and the instance turns UP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The health URL if set, else the port if set explicitly (run only), else at once.
    Auto,
    Health,
    Port,
    Now,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Debug,
}

pub struct Args {
    pub command: Command,
    /// The environment's REGISTRY_* values overridden by the options.
    pub settings: Settings,
    /// Settings given as options: (variable, option), so messages can name the option.
    pub from_options: Vec<(&'static str, String)>,
    pub positional: Vec<String>,
    /// Everything after `--` (run's command), untouched.
    pub cmd: Vec<OsString>,
    pub ready: Ready,
    pub json: bool,
    pub all: bool,
    pub verbosity: Verbosity,
}

/// The option spelling of a setting: REGISTRY_APP_NAME -> app-name.
pub fn option_name(variable: &str) -> String {
    variable
        .trim_start_matches("REGISTRY_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn setting_for_option(option: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|(variable, _)| *variable)
        .find(|variable| option_name(variable) == option)
}

/// Parses the arguments after the program name. `Err` is a usage message (exit code 2).
pub fn parse(raw: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    parse_with(raw, Settings::from_env())
}

pub fn parse_with(
    raw: impl IntoIterator<Item = OsString>,
    settings: Settings,
) -> Result<Args, String> {
    let mut args = Args {
        command: Command::Help,
        settings,
        from_options: Vec::new(),
        positional: Vec::new(),
        cmd: Vec::new(),
        ready: Ready::Auto,
        json: false,
        all: false,
        verbosity: Verbosity::Normal,
    };
    let mut command = None;
    let mut raw = raw.into_iter();
    while let Some(arg) = raw.next() {
        if arg == "--" {
            args.cmd = raw.by_ref().collect();
            break;
        }
        let arg = arg
            .into_string()
            .map_err(|bad| format!("argument {bad:?} is not valid UTF-8"))?;
        if arg == "-h" || arg == "--help" {
            command = Some(Command::Help);
            break;
        }
        if arg == "-V" || arg == "--version" {
            command = Some(Command::Version);
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let mut value = |what: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| raw.next().and_then(|v| v.into_string().ok()))
                    .ok_or_else(|| format!("option --{name} needs a value ({what})"))
            };
            match name {
                "json" => args.json = true,
                "all" => args.all = true,
                "quiet" => args.verbosity = Verbosity::Quiet,
                "verbose" => args.verbosity = Verbosity::Debug,
                "ready" => {
                    args.ready = match value("auto, health, port or now")?.as_str() {
                        "auto" => Ready::Auto,
                        "health" => Ready::Health,
                        "port" => Ready::Port,
                        "now" => Ready::Now,
                        other => {
                            return Err(format!(
                                "option --ready '{other}' is not one of auto, health, port, now"
                            ))
                        }
                    }
                }
                _ => {
                    let variable = setting_for_option(name).ok_or_else(|| {
                        format!("unknown option --{name} (registrar --help lists them)")
                    })?;
                    let v = value(variable)?;
                    args.settings
                        .set(variable, &v)
                        .map_err(|e| format!("option --{name}: {e}"))?;
                    args.from_options.push((variable, format!("--{name}")));
                }
            }
        } else if arg == "-q" {
            args.verbosity = Verbosity::Quiet;
        } else if arg == "-v" {
            args.verbosity = Verbosity::Debug;
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(format!(
                "unknown option {arg} (registrar --help lists them)"
            ));
        } else if command.is_none() {
            command = Some(match arg.as_str() {
                "run" => Command::Run,
                "register" => Command::Register,
                "discover" => Command::Discover,
                "apps" => Command::Apps,
                "instance" => Command::Instance,
                "help" => Command::Help,
                "version" => Command::Version,
                other => {
                    return Err(format!(
                    "unknown command '{other}'; commands: run, register, discover, apps, instance"
                ))
                }
            });
        } else {
            args.positional.push(arg);
        }
    }
    args.command = command.unwrap_or(Command::Help);
    let wanted = match args.command {
        Command::Discover => Some((1, "discover APP")),
        Command::Instance => Some((2, "instance APP ID")),
        Command::Run | Command::Register | Command::Apps => Some((0, "")),
        Command::Help | Command::Version => None,
    };
    if let Some((count, shape)) = wanted {
        if args.positional.len() != count {
            let name = format!("{:?}", args.command).to_lowercase();
            return Err(match count {
                0 if args.command == Command::Run => format!(
                    "unexpected argument '{}'; put the command to run after --: registrar run [OPTIONS] -- CMD [ARGS...]",
                    args.positional[0]
                ),
                0 => format!("unexpected argument '{}' for {name}", args.positional[0]),
                _ => format!("usage: registrar {shape} [OPTIONS]"),
            });
        }
    }
    if args.command == Command::Run && args.cmd.is_empty() {
        return Err(
            "run needs a command after --: registrar run [OPTIONS] -- CMD [ARGS...]".into(),
        );
    }
    if args.command != Command::Run && !args.cmd.is_empty() {
        return Err("only run takes a command after --".into());
    }
    Ok(args)
}

impl Args {
    /// Marks each variable that was given as an option where a message first names it
    /// (`REGISTRY_PORT (option --port) '0' is not...`), so the person who typed the option
    /// recognises it, also in a message listing several problems.
    pub fn explain(&self, message: &str) -> String {
        let mut out = message.to_string();
        for (variable, option) in &self.from_options {
            let whole_name = out.match_indices(variable).find(|(at, _)| {
                !out[at + variable.len()..]
                    .starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
            });
            if let Some((at, _)) = whole_name {
                out.insert_str(at + variable.len(), &format!(" (option {option})"));
            }
        }
        out
    }

    /// True when a setting has a value (from the environment or an option).
    pub fn is_set(&self, variable: &str) -> bool {
        matches!(self.settings.get(variable), Ok(Some(_)))
    }
}

pub fn help() -> String {
    let mut out = String::from(
        "registrar - registers a process with Eureka, and queries the registry

Usage:
  registrar run [OPTIONS] -- CMD [ARGS...]
      Registers the instance (STARTING), starts CMD, turns UP when CMD is ready, heartbeats
      while it runs, forwards SIGTERM/SIGINT/SIGHUP to it. SIGTERM/SIGINT: DOWN, then the
      drain, then the signal goes to CMD. When CMD exits: DOWN and DELETE, and registrar exits
      with CMD's status (128+N if a signal N killed it).
  registrar register [OPTIONS]
      Keeps an instance of a service that runs elsewhere registered, in the foreground.
      SIGTERM, SIGINT or SIGHUP: DOWN, drain, DELETE, exit.
  registrar discover APP [--all] [--json]    the UP instances of APP (--all: every status)
  registrar apps [--json]                     every application, with UP and total counts
  registrar instance APP ID [--json]          one instance, all its fields

Command options:
  --ready MODE      run/register: when the service is ready and turns UP:
                    health (REGISTRY_HEALTH_URL answers 2xx), port (REGISTRY_PORT accepts
                    connections), now, or auto (default: health if REGISTRY_HEALTH_URL is set,
                    else for run port if REGISTRY_PORT is set, else now)
  --json            queries: print JSON instead of a table
  --all             discover: include instances that are not UP
  -q, --quiet       log only warnings and errors (stderr)
  -v, --verbose     log the library's debug messages too
  -h, --help        this text
  -V, --version     the version

Settings: each REGISTRY_* environment variable, or its option (the option wins).
With a health URL the status follows the service's health while it runs: DOWN after
REGISTRY_HEALTH_THRESHOLD failed checks in a row, UP again after as many passed ones.
",
    );
    let width = SETTINGS
        .iter()
        .map(|(v, _)| option_name(v).len())
        .max()
        .unwrap_or(0);
    for (variable, description) in SETTINGS {
        out.push_str(&format!(
            "  --{:<width$} VALUE  {variable}\n  {:<pad$}{description}\n",
            option_name(variable),
            "",
            pad = width + 10
        ));
    }
    out.push_str(
        "
Exit codes:
  0    success (run: CMD exited 0)
  1    another error (e.g. the registry rejected a query)
  2    usage or configuration error (the message names the option or variable)
  3    registry unreachable (connection, timeout, 5xx); register: it could not be told on exit
  4    instance: no such instance
  run: CMD's own exit status; 128+N when signal N killed it; 126 CMD cannot be executed,
       127 CMD not found
",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Args, String> {
        parse_with(args.iter().map(OsString::from), Settings::new())
    }

    #[test]
    fn every_setting_has_an_option_in_the_help() {
        let help = help();
        for (variable, description) in SETTINGS {
            assert!(
                help.contains(&format!("--{} ", option_name(variable))),
                "{variable}"
            );
            assert!(help.contains(variable) && help.contains(description));
        }
        assert_eq!(option_name("REGISTRY_APP_NAME"), "app-name");
    }

    #[test]
    fn options_set_the_core_settings_and_win() {
        let mut env = Settings::new();
        env.set("REGISTRY_APP_NAME", "fromenv").unwrap();
        let a = parse_with(
            [
                "run",
                "--app-name",
                "opt",
                "--port=9000",
                "--ready",
                "port",
                "--",
                "node",
                "--x",
            ]
            .iter()
            .map(OsString::from),
            env,
        )
        .unwrap();
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.settings.get("REGISTRY_APP_NAME").unwrap(), Some("opt"));
        assert_eq!(a.settings.get("REGISTRY_PORT").unwrap(), Some("9000"));
        assert_eq!(a.ready, Ready::Port);
        assert_eq!(a.cmd, vec![OsString::from("node"), OsString::from("--x")]);
        assert_eq!(
            a.explain("1) REGISTRY_PORT_X; 2) REGISTRY_PORT 'x' is bad; 3) REGISTRY_URL"),
            "1) REGISTRY_PORT_X; 2) REGISTRY_PORT (option --port) 'x' is bad; 3) REGISTRY_URL"
        );
        let a = parse_strs(&["discover", "--all", "--json", "orders"]).unwrap();
        assert_eq!((a.command, a.all, a.json), (Command::Discover, true, true));
        assert_eq!(a.positional, vec!["orders"]);
    }

    #[test]
    fn mistakes_name_the_option() {
        let e = |args: &[&str]| parse_strs(args).err().unwrap();
        assert!(e(&["run", "--colour", "red", "--", "x"]).contains("--colour"));
        assert!(e(&["run", "--url"]).contains("--url needs a value"));
        assert!(e(&["run"]).contains("after --"));
        assert!(e(&["run", "node"]).contains("'node'"));
        assert!(e(&["discover"]).contains("discover APP"));
        assert!(e(&["instance", "a"]).contains("instance APP ID"));
        assert!(e(&["fly"]).contains("unknown command 'fly'"));
        assert!(e(&["apps", "--ready", "soon"]).contains("--ready 'soon'"));
        assert!(e(&["apps", "--", "x"]).contains("only run"));
    }
}
