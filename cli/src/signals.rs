//! Signals, the only `unsafe` code of the command: a few libc calls, all here.
//!
//! The signals we handle are blocked in every thread and taken synchronously by one thread in
//! `sigwait`, which hands them to ordinary Rust code through a callback. No signal handler runs,
//! so nothing has to be async-signal-safe. [`listen`] must run before any other thread is
//! started (the blocked mask is inherited by threads created afterwards, such as the agent's).
//! A child inherits the mask across exec (std's `Command` does not reset it), so
//! [`unblock_in_child`] empties it in the child between fork and exec: the supervised command
//! must receive the signals we pass on (a Python program would not otherwise; Node.js happens to
//! reset its mask itself).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use libc::{SIGHUP, SIGINT, SIGTERM};

/// Blocks `signals` in the calling thread (and so in every thread it starts later) and starts
/// a thread that calls `on_signal` with each one received.
pub fn listen(
    signals: &[libc::c_int],
    on_signal: impl Fn(libc::c_int) + Send + 'static,
) -> io::Result<()> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; pthread_sigmask and
    // sigwait only read it. The set is copied into the thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new()
        .name("registrar-signals".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is an initialised sigset_t; `signal` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                on_signal(signal);
            }
        })?;
    Ok(())
}

/// Makes the child that `command` starts begin with no signal blocked.
pub fn unblock_in_child(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls sigemptyset and
    // pthread_sigmask, which are async-signal-safe, on a local set; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) {
                0 => Ok(()),
                rc => Err(io::Error::from_raw_os_error(rc)),
            }
        });
    }
}

/// Sends `signal` to process `pid`.
pub fn send(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The conventional name of a signal we deal with, for log lines.
pub fn name(signal: libc::c_int) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        n => format!("signal {n}"),
    }
}
