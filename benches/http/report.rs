//! The printed result: one markdown table row per run, the memory and growth lines, and each
//! target of issue 5 as met or missed with the measured gap.
use super::Knobs;
use super::load::Outcome;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub backend: &'static str,
    pub c: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    /// `HTTP 503 × 2, timeout × 1`, empty without errors.
    pub error_kinds: String,
    pub rss_kib: u64,
}

impl Row {
    pub fn new(scenario: &str, backend: &'static str, c: usize, outcome: &Outcome) -> Row {
        Row {
            scenario: scenario.to_owned(),
            backend,
            c,
            per_second: outcome.per_second(),
            p50_ms: outcome.quantile_ms(0.50),
            p99_ms: outcome.quantile_ms(0.99),
            max_ms: outcome.max_ms(),
            errors: outcome.errors,
            error_kinds: outcome
                .error_kinds
                .iter()
                .map(|(kind, n)| format!("{kind} × {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            rss_kib: outcome.peak_rss_kib,
        }
    }
}

/// Everything measured on one backend.
struct BackendResult {
    label: &'static str,
    rows: Vec<Row>,
    idle_rss_kib: u64,
    idle_after_kib: u64,
    c64: Option<Row>,
    /// `(right before the growth insert, right after it)`.
    growth: Option<(Row, Row)>,
}

pub struct Report {
    knobs: Knobs,
    cores: usize,
    /// argon2id verifications per second alone: on `cores` threads, and on `c` threads.
    argon2: Option<(f64, f64)>,
    argon2_per_second: Option<f64>,
    load_before: String,
    backends: Vec<BackendResult>,
}

impl Report {
    pub fn new(knobs: Knobs, cores: usize, argon2: Option<(f64, f64)>) -> Report {
        Report {
            knobs,
            cores,
            argon2,
            argon2_per_second: argon2.map(|(alone, _)| alone),
            load_before: loadavg(),
            backends: Vec::new(),
        }
    }

    pub fn add_backend(
        &mut self,
        label: &'static str,
        rows: Vec<Row>,
        idle_rss_kib: u64,
        idle_after_kib: u64,
        c64: Option<Row>,
        growth: Option<(Row, Row)>,
    ) {
        self.backends.push(BackendResult {
            label,
            rows,
            idle_rss_kib,
            idle_after_kib,
            c64,
            growth,
        });
    }

    pub fn print(&self) {
        let k = &self.knobs;
        println!();
        println!("## Tessera HTTP benchmark");
        println!();
        println!(
            "{} · closed loop, c = {} (one request in flight per connection), {} s measured \
             after {} s warm-up; load generator on the same machine ({} thread{}) · load \
             average before: {} · after: {}",
            machine(),
            k.c,
            k.secs,
            k.warmup_secs,
            k.client_threads,
            if k.client_threads == 1 { "" } else { "s" },
            self.load_before,
            loadavg()
        );
        println!();
        println!(
            "| scenario | backend | c | req/s | p50 ms | p99 ms | max ms | errors | RSS MiB |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for b in &self.backends {
            let extra = b
                .c64
                .iter()
                .chain(b.growth.iter().flat_map(|(base, grown)| [base, grown]));
            for row in b.rows.iter().chain(extra) {
                println!(
                    "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
                    row.scenario,
                    row.backend,
                    row.c,
                    thousands(row.per_second),
                    row.p50_ms,
                    row.p99_ms,
                    row.max_ms,
                    row.errors,
                    mib(row.rss_kib)
                );
            }
        }
        println!();
        println!("RSS: the server's largest VmRSS sampled every 50 ms during the measured window.");
        for b in &self.backends {
            let extra = b
                .c64
                .iter()
                .chain(b.growth.iter().flat_map(|(x, y)| [x, y]));
            for row in b.rows.iter().chain(extra).filter(|r| r.errors > 0) {
                println!(
                    "- errors, {} {}: {}",
                    row.backend, row.scenario, row.error_kinds
                );
            }
        }
        if let Some((alone, crowded)) = self.argon2 {
            println!(
                "- argon2id verify alone (the server's parameters, in-process): {alone:.1}/s on {} \
                 threads, {crowded:.1}/s on {} threads",
                self.cores,
                k.c.max(self.cores)
            );
        }
        for b in &self.backends {
            println!(
                "- {}: idle RSS {:.1} MiB after start, {:.1} MiB idle after the runs",
                b.label,
                mib(b.idle_rss_kib),
                mib(b.idle_after_kib)
            );
            if let Some(c64) = &b.c64 {
                println!(
                    "- {}: RSS under c = 64 (refresh_rotate): {:.1} MiB peak, {} req/s",
                    b.label,
                    mib(c64.rss_kib),
                    thousands(c64.per_second)
                );
            }
            if let (Some(rate), Some(pw)) = (self.argon2_per_second, find(&b.rows, "password")) {
                println!(
                    "- {}: password grant = {:.0} % of the argon2id verify rate",
                    b.label,
                    100.0 * pw.per_second / rate
                );
            }
            if let Some((base, grown)) = &b.growth {
                println!(
                    "- {}: refresh_rotate with the grown store = {:.2} × just before the insert \
                     ({} vs {} req/s)",
                    b.label,
                    grown.per_second / base.per_second,
                    thousands(grown.per_second),
                    thousands(base.per_second)
                );
            }
        }
        println!();
        println!(
            "Targets (issue 5, stated for SQLite on this machine; other backends informative):"
        );
        println!();
        println!("| target | backend | measured | result |");
        println!("|---|---|---|---|");
        for b in &self.backends {
            for t in self.targets(b) {
                println!(
                    "| {} | {} | {} | {} |",
                    t.what, b.label, t.measured, t.result
                );
            }
        }
        println!();
    }

    fn targets(&self, b: &BackendResult) -> Vec<Target> {
        let rows = &b.rows;
        let rate = |name: &str| find(rows, name).map(|r| r.per_second);
        let healthz = rate("healthz");
        let mut out = vec![
            Target::at_least(
                "refresh with rotation ≥ 8,000 req/s",
                rate("refresh_rotate"),
                8000.0,
                "req/s",
            ),
            Target::at_most(
                "refresh with rotation p99 ≤ 5 ms",
                find(rows, "refresh_rotate").map(|r| r.p99_ms),
                5.0,
                "ms",
            ),
            Target::at_least(
                "introspection ≥ 11,000 req/s",
                rate("introspect"),
                11000.0,
                "req/s",
            ),
            Target::at_least(
                "introspection ≥ 50 % of the empty route",
                ratio(rate("introspect"), healthz),
                50.0,
                "%",
            ),
            Target::at_least(
                "Wazo HEAD /token/{t} ≥ 11,000 req/s",
                rate("wazo_head"),
                11000.0,
                "req/s",
            ),
            Target::at_least(
                "Wazo HEAD /token/{t} ≥ 50 % of the empty route",
                ratio(rate("wazo_head"), healthz),
                50.0,
                "%",
            ),
            Target::at_least(
                "client_credentials ≥ 11,000 req/s",
                rate("client_credentials"),
                11000.0,
                "req/s",
            ),
            Target::at_least(
                "password grant ≥ 90 % of argon2id verify alone",
                ratio(rate("password"), self.argon2_per_second),
                90.0,
                "%",
            ),
            Target::at_most("idle RSS ≤ 20 MiB", Some(mib(b.idle_rss_kib)), 20.0, "MiB"),
            Target::at_most(
                "RSS under c = 64 ≤ 64 MiB",
                b.c64.as_ref().map(|r| mib(r.rss_kib)),
                64.0,
                "MiB",
            ),
        ];
        let growth = b
            .growth
            .as_ref()
            .and_then(|(base, grown)| ratio(Some(grown.per_second), Some(base.per_second)));
        out.push(Target::at_least(
            "refresh with the grown store within 10 % of the empty store",
            growth,
            90.0,
            "%",
        ));
        out
    }
}

struct Target {
    what: &'static str,
    measured: String,
    result: String,
}

impl Target {
    fn at_least(what: &'static str, value: Option<f64>, bound: f64, unit: &str) -> Target {
        Target::check(what, value, bound, unit, value.is_some_and(|v| v >= bound))
    }

    fn at_most(what: &'static str, value: Option<f64>, bound: f64, unit: &str) -> Target {
        Target::check(what, value, bound, unit, value.is_some_and(|v| v <= bound))
    }

    fn check(what: &'static str, value: Option<f64>, bound: f64, unit: &str, met: bool) -> Target {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return Target {
                what,
                measured: "-".into(),
                result: "not measured".into(),
            };
        };
        let measured = if unit == "req/s" {
            format!("{} {unit}", thousands(value))
        } else {
            format!("{value:.1} {unit}")
        };
        let result = if met {
            "met".to_owned()
        } else if unit == "%" {
            format!("missed by {:.1} points", (bound - value).abs())
        } else {
            format!("missed by {:.0} %", 100.0 * (value - bound).abs() / bound)
        };
        Target {
            what,
            measured,
            result,
        }
    }
}

fn find<'a>(rows: &'a [Row], scenario: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.scenario == scenario)
}

/// `a / b` in percent.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(100.0 * a / b),
        _ => None,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `12,345` for a rate.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `N cores, <model>, <memory> GiB`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores, {model}, {mem_gib:.0} GiB")
}

/// The 1-minute load average, to tell a quiet run from a busy one.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
