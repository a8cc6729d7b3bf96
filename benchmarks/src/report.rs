//! Figures: min / median / max per side, the ratio of the medians, and what a million events
//! would cost on Lambda.

use std::fmt::Write;
use std::time::Duration;

use crate::measure::Run;

/// AWS Lambda on arm64 in us-east-1, first pricing tier: USD per GB-second of billed duration.
pub const ARM64_PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// USD per million requests.
pub const PRICE_PER_MILLION_REQUESTS: f64 = 0.20;
/// Where the prices come from, and when they were read.
pub const PRICE_SOURCE: &str = "AWS Lambda pricing, us-east-1, arm64, first tier: $0.0000133334 per GB-second, \
     $0.20 per million requests (as published on 2026-05-11; duration billed in 1 ms steps, init included)";
/// The memory size the cost is computed for.
pub const MEMORY_MB: f64 = 128.0;

/// min, median, max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread {
                min: 0.0,
                median: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What a million invocations of `duration` each cost at [`MEMORY_MB`] on arm64.
pub fn cost_per_million(duration: Duration) -> f64 {
    let billed_ms = ms(duration).ceil().max(1.0);
    1e6 * billed_ms / 1000.0 * (MEMORY_MB / 1024.0) * ARM64_PRICE_PER_GB_SECOND
        + PRICE_PER_MILLION_REQUESTS
}

/// One figure of one run.
type Figure = fn(&Run) -> Vec<f64>;

/// The rows of the table: name, unit, how to read it from a run.
fn rows() -> Vec<(&'static str, &'static str, Figure)> {
    vec![
        ("init (process start to first /next)", "ms", |r| {
            vec![ms(r.init)]
        }),
        ("first invocation", "ms", |r| vec![ms(r.first)]),
        ("warm invocation", "ms", |r| {
            r.warm.iter().map(|d| ms(*d)).collect()
        }),
        ("CPU, first invocation", "ms", |r| vec![ms(r.cpu_first)]),
        ("CPU per warm invocation", "ms", |r| {
            vec![ms(r.cpu_per_warm)]
        }),
        ("peak RSS", "MB", |r| vec![r.peak_rss_kib as f64 / 1024.0]),
        ("cost per 1M warm events", "USD", |r| {
            r.warm.iter().map(|d| cost_per_million(*d)).collect()
        }),
        ("cost per 1M cold starts (init + first)", "USD", |r| {
            vec![cost_per_million(r.init + r.first)]
        }),
    ]
}

/// The table for one function: each row's spread per side and the ratio of the medians
/// (Python / Rust).
pub fn table(function: &str, rust: &[Run], python: &[Run], warm_events: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{function}: {} runs per side, alternating, moto reset before each; {warm_events} warm events per run",
        rust.len()
    );
    let _ = writeln!(
        out,
        "{:<40} {:>26} {:>26} {:>9}",
        "", "Rust min / median / max", "Python min / median / max", "Py / Rust"
    );
    for (name, unit, figure) in rows() {
        let spread = |runs: &[Run]| Spread::of(&runs.iter().flat_map(figure).collect::<Vec<_>>());
        let (r, p) = (spread(rust), spread(python));
        let digits = if unit == "USD" { 3 } else { 1 };
        let cell = |s: Spread| {
            format!(
                "{:.d$} / {:.d$} / {:.d$} {unit}",
                s.min,
                s.median,
                s.max,
                d = digits
            )
        };
        let ratio = if r.median > 0.0 {
            format!("{:.1}x", p.median / r.median)
        } else {
            "-".into()
        };
        let _ = writeln!(out, "{name:<40} {:>26} {:>26} {ratio:>9}", cell(r), cell(p));
    }
    out
}

/// The Rust side's own account of its cold start: each phase's median, in ms.
pub fn phases(function: &str, rust: &[Run]) -> String {
    let mut names: Vec<String> = Vec::new();
    for run in rust {
        for (name, _) in &run.phases {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    if names.is_empty() {
        return format!("{function}: the binary logged no cold start phases\n");
    }
    let median = |values: Vec<f64>| Spread::of(&values).median;
    let total_process = median(rust.iter().map(|r| ms(r.init)).collect());
    let in_process = median(
        rust.iter()
            .filter_map(|r| r.init_in_process_us)
            .map(|us| us as f64 / 1000.0)
            .collect(),
    );
    let mut out = format!(
        "{function}: cold start, median of {} runs: {total_process:.2} ms from process start to first /next\n",
        rust.len()
    );
    let _ = writeln!(
        out,
        "  {:<40} {:>8.2} ms",
        "exec, loading, runtime up to main, /next",
        total_process - in_process
    );
    for name in names {
        let m = median(
            rust.iter()
                .flat_map(|r| r.phases.iter().filter(|(n, _)| *n == name))
                .map(|(_, us)| *us as f64 / 1000.0)
                .collect(),
        );
        let _ = writeln!(out, "  {name:<40} {m:>8.2} ms");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_cost() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 10.0));
        // 10 ms billed at 128 MB: 1e6 × 0.01 s × 0.125 GB × price, plus the requests.
        let c = cost_per_million(Duration::from_micros(9_200));
        assert!((c - (1e6 * 0.01 * 0.125 * ARM64_PRICE_PER_GB_SECOND + 0.20)).abs() < 1e-9);
    }
}
