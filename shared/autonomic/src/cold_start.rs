//! Where a cold start's time goes: each step of start-up marks the end of its phase, and the
//! phases are logged once, with the total, when the function is ready for its first event
//! (`cold start phases`, the times in microseconds). Steps that are not marked fall into the
//! next phase that is.

use std::sync::Mutex;
use std::time::Instant;

struct Marks {
    started: Option<Instant>,
    last: Option<Instant>,
    phases: Vec<(&'static str, u128)>,
}

static MARKS: Mutex<Marks> = Mutex::new(Marks {
    started: None,
    last: None,
    phases: Vec::new(),
});

/// The cold start begins (the first thing `main` does).
pub fn begin() {
    if let Ok(mut m) = MARKS.lock() {
        let now = Instant::now();
        m.started = Some(now);
        m.last = Some(now);
        m.phases.clear();
    }
}

/// The phase `name` ends now. Does nothing when no cold start has begun (tests, the library
/// used on its own).
pub fn phase(name: &'static str) {
    if let Ok(mut m) = MARKS.lock()
        && let Some(last) = m.last
    {
        let now = Instant::now();
        m.phases.push((name, (now - last).as_micros()));
        m.last = Some(now);
    }
}

/// The function is ready: logs the phases and the total.
pub fn ready(function: &str) {
    phase("clients");
    let Ok(mut m) = MARKS.lock() else { return };
    let Some(started) = m.started.take() else {
        return;
    };
    let phases = m
        .phases
        .iter()
        .map(|(name, us)| format!("{name}={us}"))
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        function,
        init_us = started.elapsed().as_micros() as u64,
        phases = %phases,
        "cold start phases"
    );
}
