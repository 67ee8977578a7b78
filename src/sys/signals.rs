//! Signal dispositions that nix cannot set safely.

use std::io;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Gives `signal` a handler that does nothing. PID 1 of a pid namespace only receives signals that
/// have a handler; the signals stay blocked and are read with a signalfd. Returns whether the signal
/// was ignored before (by whoever started unshare-run, e.g. nohup).
pub fn install_noop_handler(signal: Signal) -> io::Result<bool> {
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (it does nothing).
    let old = unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    Ok(matches!(old.handler(), SigHandler::SigIgn))
}

/// Ignores `signal` (kept across exec, unlike a handler).
pub fn ignore(signal: Signal) -> io::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_IGN runs no code of ours.
    unsafe { sigaction(signal, &action) }
        .map(drop)
        .map_err(io::Error::from)
}

/// Ends the process by `signal`'s default action, as if it had not been caught (the exit status a
/// shell sees is 128+N): the disposition is reset, the signal unblocked and raised.
pub fn die_by(signal: nix::sys::signal::Signal) -> ! {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, sigaction};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours.
    let _ = unsafe { sigaction(signal, &default) };
    let mut only = SigSet::empty();
    only.add(signal);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
    let _ = nix::sys::signal::raise(signal);
    // A signal whose default is to stop or to be ignored: end as the shell would report it.
    super::exit_now(128 + signal as i32)
}
