//! A graceful stop for apply. The first SIGINT (Ctrl-C) or SIGTERM starts no further change and
//! lets those in flight finish, so apply can print what it did and what it did not and exit
//! 130; a second signal, or in-flight work outlasting the grace period, ends the process at
//! once (also 130), as a shell user expects of a second Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long in-flight changes may take to finish after the first signal.
const GRACE: Duration = Duration::from_secs(30);

/// The exit code of a run stopped by a signal (128 + SIGINT), as shells report it.
pub const EXIT_CODE: u8 = 130;

/// What a command says when stopped: on the first signal, on a second, and when its work in
/// flight outlasts the grace period.
pub struct Wording {
    pub first: &'static str,
    pub second: &'static str,
    pub overdue: &'static str,
}

const APPLY: Wording = Wording {
    first: "Interrupted: no further change starts; waiting up to 30 s for those in flight (signal again to stop at once)",
    second: "Stopped at once; changes in flight may or may not have been made: plan again",
    overdue: "Changes in flight did not finish in time; stopped: plan again",
};

/// Watches for the signals on `runtime`; sets `stop` and calls `notice` on the first.
pub fn watch(runtime: &tokio::runtime::Runtime, stop: Arc<AtomicBool>, notice: impl Fn(&str) + Send + 'static) {
    watch_worded(runtime, stop, &APPLY, notice);
}

/// `watch`, in a command's own words.
pub fn watch_worded(
    runtime: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    wording: &'static Wording,
    notice: impl Fn(&str) + Send + 'static,
) {
    runtime.spawn(async move {
        let Ok(mut signals) = Signals::new() else {
            tracing::warn!("cannot watch for signals; Ctrl-C will stop at once");
            return;
        };
        signals.next().await;
        stop.store(true, Ordering::SeqCst);
        notice(wording.first);
        tokio::select! {
            () = signals.next() => notice(wording.second),
            () = tokio::time::sleep(GRACE) => notice(wording.overdue),
        }
        std::process::exit(i32::from(EXIT_CODE));
    });
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
