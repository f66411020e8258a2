//! `registrar`: registers any process with Eureka (as a sidecar or a foreground agent) and
//! queries the registry, built on the registrar core's Rust API.
//!
//! - [`args`]: the command line; one option per core setting, derived from the core's table
//! - [`supervise`]: `run` (supervise a command) and `register` (a service running elsewhere)
//! - [`query`]: `discover`, `apps`, `instance`
//! - [`signals`]: signal handling, the only unsafe code here
//! - [`exit`]: exit codes and the error type

mod args;
mod exit;
mod query;
mod signals;
mod supervise;

use args::{Command, Verbosity};

/// Log lines go to stderr, prefixed, so a supervised command's own output stays apart.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub verbosity: Verbosity,
}

impl Log {
    pub fn line(&self, message: &str) {
        eprintln!("registrar: {message}");
    }
    pub fn warn(&self, message: &str) {
        self.line(message);
    }
    pub fn info(&self, message: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(message);
        }
    }
    pub fn debug(&self, message: &str) {
        if self.verbosity >= Verbosity::Debug {
            self.line(message);
        }
    }
}

fn main() {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("registrar: {usage}");
            std::process::exit(exit::CONFIG);
        }
    };
    let log = Log {
        verbosity: args.verbosity,
    };
    let outcome = match args.command {
        Command::Help => {
            print!("{}", args::help());
            Ok(exit::SUCCESS)
        }
        Command::Version => {
            println!("registrar {}", env!("CARGO_PKG_VERSION"));
            Ok(exit::SUCCESS)
        }
        Command::Run => supervise::run(&args, log),
        Command::Register => supervise::register(&args, log),
        Command::Discover => query::discover(&args).map(|_| exit::SUCCESS),
        Command::Apps => query::apps(&args).map(|_| exit::SUCCESS),
        Command::Instance => query::instance(&args).map(|_| exit::SUCCESS),
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(failure) => {
            eprintln!("registrar: {}", failure.message);
            std::process::exit(failure.code);
        }
    }
}
