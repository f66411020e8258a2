//! `run` and `register`: one registration kept by the core's [`Agent`], driven by events.
//!
//! Three small threads feed one channel, and the main thread decides:
//! - signals (src/signals.rs): SIGTERM/SIGINT/SIGHUP, taken with sigwait
//! - the command's waiter (run): its exit status
//! - the health watcher: "ready" once, then every change of the health verdict
//!
//! ```text
//! STARTING ──ready──► UP ◄──healthy── DOWN (health failing, threshold reached)
//! SIGTERM/SIGINT ──► DOWN ──drain──► (run: signal to CMD, wait for it) ──► stop: DOWN + DELETE
//! CMD exits ──► stop: DOWN + DELETE ──► exit with CMD's status
//! ```
//!
//! Health-following and drain are driven from here through the public Agent API (set_status,
//! stop), with the probing and threshold logic in the core (registrar::health), because the
//! command also waits for readiness and holds the signal back during the drain; the agent's
//! own health watcher and drain (which a library host gets) are switched off for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::agent::{Agent, LogLevel};
use registrar::config::Config;
use registrar::health::{drain_duration, port_accepts, HealthConfig, HealthTracker, HealthUrl};
use registrar::instance::InstanceStatus;

use crate::args::{Args, Ready, Verbosity};
use crate::exit::{self, Failure};
use crate::signals;
use crate::Log;

enum Event {
    Signal(i32),
    /// run: the command ended.
    Exited(std::io::Result<ExitStatus>),
    /// The service became ready (sent once).
    Ready,
    /// The health verdict changed: healthy, or unhealthy with the last check's error.
    Health(Result<(), String>),
}

/// How readiness is detected.
enum Readiness {
    Now,
    Health(HealthUrl),
    Port(Vec<SocketAddr>),
}

/// Everything validated before anything starts: a configuration mistake exits with code 2
/// before the command runs and before anything is registered.
struct Plan {
    config: Config,
    health: HealthConfig,
    drain: Duration,
    readiness: Readiness,
}

fn plan(args: &Args, supervising: bool) -> Result<Plan, Failure> {
    let config =
        Config::from_settings(&args.settings).map_err(|e| Failure::from_error(args, &e))?;
    let health =
        HealthConfig::from_settings(&args.settings).map_err(|e| Failure::from_error(args, &e))?;
    let drain = drain_duration(&args.settings).map_err(|e| Failure::from_error(args, &e))?;
    let mut ports = Vec::new();
    if supervising {
        // The command is local; it may listen on loopback only, or on the advertised address.
        ports.push(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            config.port,
        ));
        ports.push(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            config.port,
        ));
    }
    if let Ok(ip) = config.ip_address.parse::<IpAddr>() {
        ports.push(SocketAddr::new(ip, config.port));
    }
    let readiness = match (args.ready, &health.url) {
        (Ready::Health, None) => {
            return Err(Failure::new(
                exit::CONFIG,
                "--ready health needs REGISTRY_HEALTH_URL (or --health-url)".into(),
            ))
        }
        (Ready::Health | Ready::Auto, Some(url)) => Readiness::Health(url.clone()),
        (Ready::Port, _) => Readiness::Port(ports),
        (Ready::Auto, None) if supervising && args.is_set("REGISTRY_PORT") => {
            Readiness::Port(ports)
        }
        (Ready::Auto | Ready::Now, _) => Readiness::Now,
    };
    Ok(Plan {
        config,
        health,
        drain,
        readiness,
    })
}

/// Creates and starts the agent (registration as STARTING), logging through `log`.
fn start_agent(mut config: Config, log: Log) -> Result<Agent, Failure> {
    // The command follows health and drains itself (readiness first, the signal held back
    // during the drain): the agent must not check or drain a second time.
    config.health.url = None;
    config.drain = Duration::ZERO;
    let agent = Agent::new(config).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    let level = match log.verbosity {
        Verbosity::Quiet => LogLevel::Warn,
        Verbosity::Normal => LogLevel::Info,
        Verbosity::Debug => LogLevel::Debug,
    };
    agent.set_logger(Some((
        level,
        Arc::new(move |_, message: &str| log.line(message)),
    )));
    agent
        .start()
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot start the agent: {e}")))?;
    let c = agent.config();
    log.info(&format!(
        "registering {}/{} (STARTING) with {}",
        c.app_name,
        c.instance_id,
        c.service_urls
            .iter()
            .map(|u| u.base())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(agent)
}

/// The health watcher: waits for readiness, then (with a health URL) reports every change of
/// the verdict. Runs until the process exits; sends nothing once the receiver is gone.
fn watch(readiness: Readiness, health: HealthConfig, log: Log, events: Sender<Event>) {
    let timeout = health.timeout;
    let mut pause = Duration::from_millis(100);
    let ceiling = health
        .interval
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        let outcome = match &readiness {
            Readiness::Now => Ok(()),
            Readiness::Health(url) => url.check(timeout).map(|_| ()),
            Readiness::Port(addrs) => {
                if addrs
                    .iter()
                    .any(|a| port_accepts(*a, timeout.min(Duration::from_secs(1))))
                {
                    Ok(())
                } else {
                    Err(format!(
                        "nothing accepts connections on port {}",
                        addrs[0].port()
                    ))
                }
            }
        };
        match outcome {
            Ok(()) => break,
            Err(why) => log.debug(&format!("not ready yet: {why}")),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(ceiling);
    }
    if events.send(Event::Ready).is_err() {
        return;
    }
    let Some(url) = health.url else { return };
    let mut tracker = HealthTracker::new(health.threshold);
    loop {
        std::thread::sleep(health.interval);
        let result = url.check(timeout).map(|_| ());
        if let Err(why) = &result {
            log.debug(&format!("health check {url} failed: {why}"));
        }
        if tracker.record(result.is_ok()).is_some() && events.send(Event::Health(result)).is_err() {
            return;
        }
    }
}

fn spawn_watcher(plan: &mut Plan, log: Log, events: Sender<Event>) -> Result<(), Failure> {
    let readiness = std::mem::replace(&mut plan.readiness, Readiness::Now);
    let health = plan.health.clone();
    std::thread::Builder::new()
        .name("registrar-health".into())
        .stack_size(128 * 1024)
        .spawn(move || watch(readiness, health, log, events))
        .map(|_| ())
        .map_err(|e| Failure::new(exit::FAILURE, format!("cannot start a thread: {e}")))
}

fn listen_for_signals(events: &Sender<Event>) -> Result<(), Failure> {
    let events = events.clone();
    signals::listen(
        &[signals::SIGTERM, signals::SIGINT, signals::SIGHUP],
        move |s| {
            let _ = events.send(Event::Signal(s));
        },
    )
    .map_err(|e| Failure::new(exit::FAILURE, format!("cannot handle signals: {e}")))
}

/// The status the service's readiness and health ask for.
fn set_status(agent: &Agent, status: InstanceStatus, log: Log, why: &str) {
    log.info(&format!("status {} ({why})", status.as_str()));
    if let Err(e) = agent.set_status(status) {
        log.warn(&format!("cannot set status {}: {e}", status.as_str()));
    }
}

/// Stops the agent: DOWN, then DELETE, bounded. Says whether the registry was told.
fn deregister(agent: &Agent, log: Log) -> bool {
    let config = agent.config();
    let bound = config.timeout * 2 + Duration::from_secs(1);
    match agent.stop(bound) {
        // The agent logs the deregistration itself.
        Ok(()) => true,
        Err(e) => {
            log.warn(&format!(
                "could not deregister {}/{}: {e}; the registry drops it when its lease expires",
                config.app_name, config.instance_id
            ));
            false
        }
    }
}

/// `registrar run -- CMD ARGS`: returns CMD's exit status (128+N for signal N).
pub fn run(args: &Args, log: Log) -> Result<i32, Failure> {
    let mut plan = plan(args, true)?;
    let (events, inbox) = channel();
    // Before any other thread exists, so every later thread (the agent's too) inherits the mask.
    listen_for_signals(&events)?;

    let program = &args.cmd[0];
    let mut command = std::process::Command::new(program);
    command.args(&args.cmd[1..]);
    signals::unblock_in_child(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                exit::COMMAND_NOT_FOUND
            } else {
                exit::CANNOT_EXECUTE
            };
            // Nothing was registered yet: the agent starts only once the command runs.
            return Err(Failure::new(code, format!("cannot start {program:?}: {e}")));
        }
    };
    let pid = child.id();
    log.info(&format!("started {program:?} (pid {pid})"));
    let agent = match start_agent(plan.config.clone(), log) {
        Ok(agent) => agent,
        Err(failure) => {
            let _ = signals::send(pid, signals::SIGTERM);
            let _ = child.wait();
            return Err(failure);
        }
    };
    {
        let events = events.clone();
        std::thread::Builder::new()
            .name("registrar-wait".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = events.send(Event::Exited(child.wait()));
            })
            .map_err(|e| Failure::new(exit::FAILURE, format!("cannot start a thread: {e}")))?;
    }
    spawn_watcher(&mut plan, log, events)?;

    let forward = |signal: i32| {
        log.info(&format!("passing {} to pid {pid}", signals::name(signal)));
        if let Err(e) = signals::send(pid, signal) {
            log.warn(&format!(
                "cannot send {} to pid {pid}: {e}",
                signals::name(signal)
            ));
        }
    };
    let mut stopping = false;
    // A termination signal held back until the drain is over.
    let mut held: Option<(i32, Instant)> = None;
    let exited = loop {
        let wait = held.map_or(Duration::from_secs(3600), |(_, at)| {
            at.saturating_duration_since(Instant::now())
        });
        match inbox.recv_timeout(wait) {
            Ok(Event::Signal(signals::SIGHUP)) => forward(signals::SIGHUP),
            Ok(Event::Signal(signal)) if !stopping => {
                stopping = true;
                set_status(
                    &agent,
                    InstanceStatus::Down,
                    log,
                    &format!("{} received", signals::name(signal)),
                );
                if plan.drain.is_zero() {
                    forward(signal);
                } else {
                    log.info(&format!(
                        "draining for {:.1} s before passing {} on (send it again to skip)",
                        plan.drain.as_secs_f64(),
                        signals::name(signal)
                    ));
                    held = Some((signal, Instant::now() + plan.drain));
                }
            }
            Ok(Event::Signal(signal)) => {
                // A second signal cuts the drain short.
                held = None;
                forward(signal);
            }
            Ok(Event::Ready) if !stopping => {
                set_status(&agent, InstanceStatus::Up, log, "the command is ready")
            }
            Ok(Event::Health(Ok(()))) if !stopping => {
                set_status(&agent, InstanceStatus::Up, log, "health check passes again")
            }
            Ok(Event::Health(Err(why))) if !stopping => set_status(
                &agent,
                InstanceStatus::Down,
                log,
                &format!("health check failing: {why}"),
            ),
            Ok(Event::Ready | Event::Health(_)) => {}
            Ok(Event::Exited(status)) => break status,
            Err(RecvTimeoutError::Timeout) => {
                if let Some((signal, _)) = held.take() {
                    forward(signal);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("the waiter thread ended"))
            }
        }
    };
    let code = match exited {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => {
                log.info(&format!("{program:?} exited with status {code}"));
                code
            }
            (None, Some(signal)) => {
                log.info(&format!(
                    "{program:?} was killed by {}",
                    signals::name(signal)
                ));
                128 + signal
            }
            (None, None) => exit::FAILURE,
        },
        Err(e) => {
            log.warn(&format!("cannot wait for {program:?}: {e}"));
            exit::FAILURE
        }
    };
    deregister(&agent, log);
    Ok(code)
}

/// `registrar register`: keeps the instance registered until SIGTERM/SIGINT/SIGHUP.
pub fn register(args: &Args, log: Log) -> Result<i32, Failure> {
    let mut plan = plan(args, false)?;
    let (events, inbox) = channel();
    listen_for_signals(&events)?;
    let agent = start_agent(plan.config.clone(), log)?;
    spawn_watcher(&mut plan, log, events)?;
    let mut drain_until: Option<Instant> = None;
    loop {
        let wait = drain_until.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(Instant::now())
        });
        match inbox.recv_timeout(wait) {
            Ok(Event::Signal(signal)) if drain_until.is_none() => {
                set_status(
                    &agent,
                    InstanceStatus::Down,
                    log,
                    &format!("{} received", signals::name(signal)),
                );
                if plan.drain.is_zero() {
                    break;
                }
                log.info(&format!(
                    "draining for {:.1} s (send it again to skip)",
                    plan.drain.as_secs_f64()
                ));
                drain_until = Some(Instant::now() + plan.drain);
            }
            Ok(Event::Signal(_)) => break,
            Ok(Event::Ready) if drain_until.is_none() => {
                set_status(&agent, InstanceStatus::Up, log, "the service is ready")
            }
            Ok(Event::Health(Ok(()))) if drain_until.is_none() => {
                set_status(&agent, InstanceStatus::Up, log, "health check passes again")
            }
            Ok(Event::Health(Err(why))) if drain_until.is_none() => set_status(
                &agent,
                InstanceStatus::Down,
                log,
                &format!("health check failing: {why}"),
            ),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) if drain_until.is_some() => break,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if deregister(&agent, log) {
        Ok(exit::SUCCESS)
    } else {
        Ok(exit::UNREACHABLE)
    }
}
