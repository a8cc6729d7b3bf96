//! `side-by-side`: the benchmark's command line (`scripts/benchmark.sh` runs it).
//!
//! ```text
//! side-by-side [--runs N] [--events N] [--functions a,b] [--rust-dir DIR] [--python PATH]
//!              [--zips DIR] [--check-only]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use autonomic_benchmarks::{Side, Subject, measure, report, sizes};
use autonomic_testkit::{Moto, workspace_root};

struct Options {
    runs: usize,
    events: usize,
    functions: Vec<Subject>,
    rust_dir: PathBuf,
    python: PathBuf,
    zips: Option<PathBuf>,
    check_only: bool,
}

fn options() -> Result<Options, String> {
    let root = workspace_root();
    let mut o = Options {
        runs: 15,
        events: 21,
        functions: Subject::all().to_vec(),
        rust_dir: root.join("target/release"),
        python: root.join(".venv/benchmarks/bin/python"),
        zips: None,
        check_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--events" => o.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--functions" => {
                o.functions = value()?
                    .split(',')
                    .map(|f| Subject::named(f).ok_or(format!("no benchmark for {f:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--rust-dir" => o.rust_dir = value()?.into(),
            "--python" => o.python = value()?.into(),
            "--zips" => o.zips = Some(value()?.into()),
            "--check-only" => o.check_only = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    // The Python side runs in benchmarks/python: paths given relative to here must still hold.
    o.rust_dir = std::path::absolute(&o.rust_dir).map_err(|e| format!("--rust-dir: {e}"))?;
    o.python = std::path::absolute(&o.python).map_err(|e| format!("--python: {e}"))?;
    if o.runs == 0 || o.events < 2 {
        return Err("--runs must be at least 1 and --events at least 2".into());
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("side-by-side: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    if let Some(dir) = &o.zips {
        failed |= !zip_budget(dir);
    }
    let moto = Moto::start();
    let rust = Side::Rust {
        dir: o.rust_dir.clone(),
    };
    let python = Side::Python {
        python: o.python.clone(),
    };
    for subject in &o.functions {
        match side_by_side(subject, &rust, &python, &moto, &o).await {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("{}: {e}", subject.function());
                failed = true;
            }
        }
    }
    if !o.check_only {
        println!("\nCost: {}", report::PRICE_SOURCE);
        println!(
            "Durations are measured by the Runtime API emulator, from the event handed out on /next to the answer posted, as Lambda bills them."
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn side_by_side(
    subject: &Subject,
    rust: &Side,
    python: &Side,
    moto: &Moto,
    o: &Options,
) -> Result<String, String> {
    let function = subject.function();
    // Enough events for both shapes of a container's life: the first event and the later ones.
    let check_events = 4.min(o.events);
    let rust_calls = measure::calls(subject, rust, moto, check_events).await?;
    let python_calls = measure::calls(subject, python, moto, check_events).await?;
    if rust_calls != python_calls {
        return Err(format!(
            "the two sides made different AWS calls:\n  Rust:   {rust_calls:?}\n  Python: {python_calls:?}"
        ));
    }
    let mut out = format!(
        "{function}: both sides made the same AWS calls: init {:?}; first event {:?}; each later event {:?}",
        rust_calls.init,
        rust_calls.events.first().cloned().unwrap_or_default(),
        rust_calls.events.last().cloned().unwrap_or_default()
    );
    if o.check_only {
        return Ok(out);
    }
    let (mut rust_runs, mut python_runs) = (Vec::new(), Vec::new());
    for i in 0..o.runs {
        // Alternate which side goes first, so neither always meets a freshly started moto.
        let order = if i.is_multiple_of(2) {
            [rust, python]
        } else {
            [python, rust]
        };
        for side in order {
            let r = measure::run(subject, side, moto, o.events).await?;
            match side {
                Side::Rust { .. } => rust_runs.push(r),
                Side::Python { .. } => python_runs.push(r),
            }
        }
    }
    out.push_str(&report::table(
        function,
        &rust_runs,
        &python_runs,
        o.events - 1,
    ));
    out.push_str(&report::phases(function, &rust_runs));
    Ok(out)
}

/// Prints each function's zip size against the budget; false when one is over or missing.
fn zip_budget(dir: &std::path::Path) -> bool {
    match sizes::check(dir) {
        Ok(rows) => {
            println!(
                "arm64 deployment packages ({}), budget {} bytes each:",
                dir.display(),
                sizes::ZIP_BUDGET_BYTES
            );
            for (f, bytes, ok) in &rows {
                println!(
                    "  {f:<18} {bytes:>10} bytes  {:.2} MB  {}",
                    *bytes as f64 / 1e6,
                    if *ok { "within budget" } else { "OVER BUDGET" }
                );
            }
            rows.iter().all(|(_, _, ok)| *ok)
        }
        Err(e) => {
            eprintln!("size budget: {e}");
            false
        }
    }
}
