//! Benchmark driver for the id-map helpers: exec time of `newuidmap <pid> 0 <start> <count>`.
//!
//! Not a test: it measures and reports, it never decides pass/fail on timing (ratios are printed with
//! their targets and `met=yes|no`). It fails loudly only when a helper misbehaves (non-zero exit, wrong
//! /proc/<pid>/uid_map). bench/helpers.sh runs it as root with fixtures; docs/benchmarks.md has results.
//!
//! Method (DESIGN.md section 7). Each variant is a program (a helper, or a floor such as /bin/true) and
//! optionally a file bind-mounted over /etc/subuid. Each variant gets one worker process, a copy of this
//! program started with `--worker`, running as the bench user and, for a fixture, in its own private mount
//! namespace where the fixture is bind-mounted over /etc/subuid (so several /etc/subuid contents can be
//! measured in one interleaved run, and the machine's real file is never touched). Per iteration the worker:
//!   1. spawns a target (`cat` that unshared a user namespace before exec, stdin piped; the namespace
//!      exists once spawn returns, as std waits for the exec);
//!   2. times only spawn + exec + wait of `PROGRAM <pid> 0 <start> <count>` (stdio: /dev/null, stderr
//!      inherited); the set-up of the mount namespace is done once per worker, so it is not in the
//!      timed interval of any variant;
//!   3. checks /proc/<pid>/uid_map: exactly `0 <start> <count>` for a helper, empty for a floor;
//!   4. releases the target (closes its stdin, waits for it).
//!
//! The driver asks the workers in turn, one iteration each, so every round runs every variant once; the
//! order is rotated each round (ABC, BCA, CAB, ...) so that no variant always follows the same one.
//! Warm-up rounds are run first and discarded. Percentiles interpolate linearly between samples.
//!
//! Usage (as root: `--user` is required; without fixtures it can also run as an unprivileged user):
//!   idmap_bench [--iterations N] [--warmup N] [--start ID] [--count N] [--user NAME]
//!               --helper LABEL=PATH[,subuid=FILE] ...  --floor LABEL=PATH[,subuid=FILE] ...
//!               [--ratio NAME=NUM/DEN[,target=X]] ...
//! Output: a human-readable table, then machine-readable lines starting with `idmap_bench `.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

const USAGE: &str = "usage: idmap_bench [--iterations N] [--warmup N] [--start ID] [--count N] \
[--user NAME] --helper LABEL=PATH[,subuid=FILE] ... [--floor LABEL=PATH[,subuid=FILE]] ... \
[--ratio NAME=NUM/DEN[,target=X]] ...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--worker") {
        worker_main(&args[1..])
    } else {
        driver_main(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("idmap_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Configuration

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A helper: must exit 0 and write exactly `0 <start> <count>`.
    Map,
    /// A floor program (e.g. /bin/true): must exit 0 and leave the map empty.
    Empty,
}

impl Expect {
    fn word(self) -> &'static str {
        match self {
            Expect::Map => "map",
            Expect::Empty => "empty",
        }
    }
    fn from_word(word: &str) -> Option<Expect> {
        match word {
            "map" => Some(Expect::Map),
            "empty" => Some(Expect::Empty),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Variant {
    label: String,
    program: PathBuf,
    subuid: Option<PathBuf>,
    expect: Expect,
}

#[derive(Debug)]
struct RatioSpec {
    name: String,
    numerator: String,
    denominator: String,
    target: Option<f64>,
}

#[derive(Debug)]
struct Config {
    iterations: usize,
    warmup: usize,
    start: u64,
    count: u64,
    user: Option<String>,
    variants: Vec<Variant>,
    ratios: Vec<RatioSpec>,
}

fn parse_config(args: &[String]) -> Result<Config, String> {
    let mut config = Config {
        iterations: 200,
        warmup: 5,
        start: 100_000,
        count: 65_536,
        user: None,
        variants: Vec::new(),
        ratios: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--iterations" => config.iterations = parse_number(flag, value)?,
            "--warmup" => config.warmup = parse_number(flag, value)?,
            "--start" => config.start = parse_number(flag, value)?,
            "--count" => config.count = parse_number(flag, value)?,
            "--user" => config.user = Some(value.clone()),
            "--helper" => config.variants.push(parse_variant(value, Expect::Map)?),
            "--floor" => config.variants.push(parse_variant(value, Expect::Empty)?),
            "--ratio" => config.ratios.push(parse_ratio(value)?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if config.variants.is_empty() {
        return Err(format!("no --helper or --floor given\n{USAGE}"));
    }
    if config.iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    for (i, v) in config.variants.iter().enumerate() {
        if config.variants[..i].iter().any(|w| w.label == v.label) {
            return Err(format!("duplicate label {}", v.label));
        }
    }
    for r in &config.ratios {
        for label in [&r.numerator, &r.denominator] {
            if !config.variants.iter().any(|v| &v.label == label) {
                return Err(format!("ratio {}: no variant labelled {label}", r.name));
            }
        }
    }
    Ok(config)
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

/// `LABEL=PATH[,subuid=FILE]`
fn parse_variant(spec: &str, expect: Expect) -> Result<Variant, String> {
    let (label, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("expected LABEL=PATH[,subuid=FILE], got {spec:?}"))?;
    let mut parts = rest.split(',');
    let program = parts.next().unwrap_or_default();
    let mut subuid = None;
    for part in parts {
        match part.split_once('=') {
            Some(("subuid", file)) if !file.is_empty() => subuid = Some(PathBuf::from(file)),
            _ => return Err(format!("{spec:?}: unknown option {part:?}")),
        }
    }
    if label.is_empty() || label.contains(char::is_whitespace) || program.is_empty() {
        return Err(format!("expected LABEL=PATH[,subuid=FILE], got {spec:?}"));
    }
    Ok(Variant {
        label: label.to_string(),
        program: PathBuf::from(program),
        subuid,
        expect,
    })
}

/// `NAME=NUM/DEN[,target=X]`
fn parse_ratio(spec: &str) -> Result<RatioSpec, String> {
    let bad = || format!("expected NAME=NUM/DEN[,target=X], got {spec:?}");
    let (name, rest) = spec.split_once('=').ok_or_else(bad)?;
    let (pair, target) = match rest.split_once(',') {
        Some((pair, option)) => {
            let value = option.strip_prefix("target=").ok_or_else(bad)?;
            (pair, Some(value.parse::<f64>().map_err(|_| bad())?))
        }
        None => (rest, None),
    };
    let (numerator, denominator) = pair.split_once('/').ok_or_else(bad)?;
    Ok(RatioSpec {
        name: name.to_string(),
        numerator: numerator.to_string(),
        denominator: denominator.to_string(),
        target,
    })
}

// ---------------------------------------------------------------------------------------------------
// Driver

struct Worker {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    subuid_lines: String,
}

impl Worker {
    fn request(&mut self, label: &str) -> Result<u64, String> {
        writeln!(self.to, "go")
            .and_then(|()| self.to.flush())
            .map_err(|e| format!("{label}: worker gone: {e}"))?;
        let mut line = String::new();
        self.from
            .read_line(&mut line)
            .map_err(|e| format!("{label}: worker read: {e}"))?;
        match line.trim_end().split_once(' ') {
            Some(("ok", nanos)) => nanos
                .parse()
                .map_err(|_| format!("{label}: bad worker reply {line:?}")),
            Some(("err", message)) => Err(format!("{label}: {message}")),
            _ if line.is_empty() => Err(format!("{label}: worker exited")),
            _ => Err(format!("{label}: bad worker reply {line:?}")),
        }
    }

    fn finish(mut self) {
        drop(self.to);
        let _ = self.child.wait();
    }
}

/// A worker for one variant: as the bench user, in a private mount namespace with the fixture
/// bind-mounted over /etc/subuid when the variant has one.
fn start_worker(config: &Config, variant: &Variant) -> Result<Worker, String> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let worker_args = [
        "--worker".to_string(),
        variant.program.display().to_string(),
        config.start.to_string(),
        config.count.to_string(),
        variant.expect.word().to_string(),
    ];
    let root = nix::unistd::geteuid().is_root();
    let ids = match (&config.user, root) {
        (Some(name), true) => {
            let user = nix::unistd::User::from_name(name)
                .map_err(|e| format!("looking up user {name}: {e}"))?
                .ok_or_else(|| format!("no such user {name}"))?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        }
        (None, true) => {
            return Err("running as root: pass --user NAME (an unprivileged caller)".into());
        }
        (Some(_), false) => return Err("--user needs root".into()),
        (None, false) => None,
    };
    let mut command = match (&variant.subuid, ids) {
        (Some(fixture), Some((uid, gid))) => {
            // Set-up only; none of it is inside a timed interval.
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(
                    "mount --bind -- \"$1\" /etc/subuid && u=$2 g=$3 && shift 3 && \
                     exec setpriv --reuid=\"$u\" --regid=\"$g\" --clear-groups -- \"$@\"",
                )
                .arg("sh")
                .arg(fixture)
                .arg(uid.to_string())
                .arg(gid.to_string())
                .arg(&me);
            c
        }
        (Some(_), None) => {
            return Err(format!(
                "{}: a subuid fixture needs root (to bind-mount it) and --user",
                variant.label
            ));
        }
        (None, Some((uid, gid))) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"])
                .arg(&me);
            c
        }
        (None, None) => Command::new(&me),
    };
    command
        .args(worker_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: starting worker: {e}", variant.label))?;
    let to = child.stdin.take().expect("piped");
    let mut from = BufReader::new(child.stdout.take().expect("piped"));
    let mut hello = String::new();
    from.read_line(&mut hello)
        .map_err(|e| format!("{}: worker read: {e}", variant.label))?;
    let Some(subuid_lines) = hello.trim_end().strip_prefix("ready ") else {
        let _ = child.wait();
        return Err(format!(
            "{}: worker did not start (said {hello:?})",
            variant.label
        ));
    };
    Ok(Worker {
        subuid_lines: subuid_lines.to_string(),
        child,
        to,
        from,
    })
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    n: usize,
    median: f64,
    p10: f64,
    p90: f64,
    mean: f64,
    min: f64,
    max: f64,
}

/// Milliseconds; percentiles by linear interpolation between the sorted samples.
fn summarize(samples_ns: &[u64]) -> Summary {
    let mut ms: Vec<f64> = samples_ns.iter().map(|&ns| ns as f64 / 1e6).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&ms, p);
    Summary {
        n: ms.len(),
        median: pct(0.5),
        p10: pct(0.1),
        p90: pct(0.9),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

/// `sorted` ascending and not empty; linear interpolation between the closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn driver_main(args: &[String]) -> Result<(), String> {
    let config = parse_config(args)?;
    let mut workers = Vec::new();
    for variant in &config.variants {
        match start_worker(&config, variant) {
            Ok(w) => workers.push(w),
            Err(e) => {
                workers.into_iter().for_each(Worker::finish);
                return Err(e);
            }
        }
    }
    let n = config.variants.len();
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(config.iterations); n];
    let rounds = config.warmup + config.iterations;
    let started = Instant::now();
    let mut failure = None;
    'rounds: for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            match workers[i].request(&config.variants[i].label) {
                Ok(ns) if round >= config.warmup => samples[i].push(ns),
                Ok(_) => {}
                Err(e) => {
                    failure = Some(format!("round {round}: {e}"));
                    break 'rounds;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let subuid_lines: Vec<String> = workers.iter().map(|w| w.subuid_lines.clone()).collect();
    workers.into_iter().for_each(Worker::finish);
    if let Some(e) = failure {
        return Err(e);
    }
    report(&config, &samples, &subuid_lines, elapsed.as_secs_f64());
    Ok(())
}

fn report(config: &Config, samples: &[Vec<u64>], subuid_lines: &[String], seconds: f64) {
    let summaries: Vec<Summary> = samples.iter().map(|s| summarize(s)).collect();
    let index = |label: &str| {
        config
            .variants
            .iter()
            .position(|v| v.label == label)
            .expect("labels checked")
    };
    let floor = config
        .variants
        .iter()
        .position(|v| v.expect == Expect::Empty)
        .map(|i| (&config.variants[i].label, summaries[i]));

    println!(
        "idmap helpers: {} timed rounds (+{} warm-up), map 0 {} {}, variants interleaved, {:.1} s",
        config.iterations, config.warmup, config.start, config.count, seconds
    );
    println!(
        "{:<14} {:>12} {:>5} {:>9} {:>9} {:>9} {:>9}  program",
        "variant", "subuid lines", "n", "median ms", "p10 ms", "p90 ms", "mean ms"
    );
    for ((variant, s), lines) in config.variants.iter().zip(&summaries).zip(subuid_lines) {
        println!(
            "{:<14} {:>12} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}",
            variant.label,
            lines,
            s.n,
            s.median,
            s.p10,
            s.p90,
            s.mean,
            variant.program.display()
        );
    }
    if !config.ratios.is_empty() {
        println!();
        match floor {
            Some((label, _)) => println!(
                "ratios of medians; 'over floor' subtracts the {label} median from both first"
            ),
            None => println!("ratios of medians"),
        }
        println!(
            "context: p10 = ratio of the p10s; paired = median over rounds of NUM/DEN in the same \
             round, and the share of rounds where NUM was faster"
        );
    }
    let mut ratio_lines = Vec::new();
    for r in &config.ratios {
        let (ni, di) = (index(&r.numerator), index(&r.denominator));
        let (num, den) = (summaries[ni], summaries[di]);
        let value = num.median / den.median;
        let p10_ratio = num.p10 / den.p10;
        // Every round ran every variant once, so samples[ni][k] and samples[di][k] are neighbours.
        let mut paired: Vec<f64> = samples[ni]
            .iter()
            .zip(&samples[di])
            .map(|(&a, &b)| a as f64 / b as f64)
            .collect();
        paired.sort_by(f64::total_cmp);
        let paired_median = percentile(&paired, 0.5);
        let faster = samples[ni]
            .iter()
            .zip(&samples[di])
            .filter(|(a, b)| a < b)
            .count() as f64
            / paired.len() as f64;
        // Meaningless when the floor itself is one side of the ratio.
        let over_floor = floor
            .filter(|(label, _)| **label != r.numerator && **label != r.denominator)
            .map(|(_, f)| (num.median - f.median) / (den.median - f.median));
        let verdict = r.target.map(|t| (t, value <= t));
        println!(
            "  {:<12} {}/{} = {:.3}{}  (p10 {:.3}; paired {:.3}, faster in {:.0}%){}",
            r.name,
            r.numerator,
            r.denominator,
            value,
            over_floor
                .map(|x| format!("  (over floor {x:.3})"))
                .unwrap_or_default(),
            p10_ratio,
            paired_median,
            faster * 100.0,
            verdict
                .map(|(t, met)| format!("  target <= {t}: {}", if met { "MET" } else { "MISSED" }))
                .unwrap_or_default()
        );
        ratio_lines.push(format!(
            "idmap_bench ratio name={} num={} den={} value={:.4} over_floor={} p10_ratio={:.4} \
             paired_median={:.4} num_faster_share={:.3} target={} met={}",
            r.name,
            r.numerator,
            r.denominator,
            value,
            over_floor.map_or("-".into(), |x| format!("{x:.4}")),
            p10_ratio,
            paired_median,
            faster,
            verdict.map_or("-".into(), |(t, _)| t.to_string()),
            verdict.map_or("-", |(_, met)| if met { "yes" } else { "no" }),
        ));
    }
    println!();
    for ((variant, s), lines) in config.variants.iter().zip(&summaries).zip(subuid_lines) {
        println!(
            "idmap_bench result label={} kind={} subuid_lines={} n={} median_ms={:.4} p10_ms={:.4} \
             p90_ms={:.4} mean_ms={:.4} min_ms={:.4} max_ms={:.4} program={}",
            variant.label,
            if variant.expect == Expect::Map {
                "helper"
            } else {
                "floor"
            },
            lines,
            s.n,
            s.median,
            s.p10,
            s.p90,
            s.mean,
            s.min,
            s.max,
            variant.program.display()
        );
    }
    for line in ratio_lines {
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Worker: `--worker PROGRAM START COUNT map|empty`; reads "go" lines, answers "ok NANOS" or "err TEXT".

fn worker_main(args: &[String]) -> Result<(), String> {
    let [program, start, count, expect] = args else {
        return Err("--worker PROGRAM START COUNT map|empty".into());
    };
    let start: u64 = parse_number("start", start)?;
    let count: u64 = parse_number("count", count)?;
    let expect = Expect::from_word(expect).ok_or("--worker: expect map or empty")?;
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    // The handshake says how many lines /etc/subuid has here, to show which fixture is in place.
    let lines = match fs::read("/etc/subuid") {
        Ok(bytes) => bytes.iter().filter(|&&b| b == b'\n').count().to_string(),
        Err(_) => "missing".to_string(),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let reply = |out: &mut io::StdoutLock, text: String| -> Result<(), String> {
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("worker write: {e}"))
    };
    reply(&mut out, format!("ready {lines}"))?;
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("worker read: {e}"))?;
        if line != "go" {
            return Err(format!("worker: unexpected request {line:?}"));
        }
        let answer = match iteration(program, start, count, expect, &devnull) {
            Ok(ns) => format!("ok {ns}"),
            Err(e) => format!("err {}", e.replace('\n', " | ")),
        };
        reply(&mut out, answer)?;
    }
    Ok(())
}

/// A process in a fresh user namespace with no maps yet, blocked reading its stdin.
fn spawn_target() -> io::Result<Child> {
    let mut command = Command::new("/bin/cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    // SAFETY: between fork and exec the closure only calls unshare(2), which is async-signal-safe,
    // and builds an io::Error from errno without allocating.
    unsafe {
        command.pre_exec(|| {
            if nix::libc::unshare(nix::libc::CLONE_NEWUSER) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    // With a pre_exec hook std forks and waits for the exec to succeed, so the namespace exists now.
    command.spawn()
}

fn release(mut target: Child) {
    drop(target.stdin.take());
    let _ = target.wait();
}

fn iteration(
    program: &str,
    start: u64,
    count: u64,
    expect: Expect,
    devnull: &File,
) -> Result<u64, String> {
    let target = spawn_target().map_err(|e| format!("spawning target: {e}"))?;
    let pid = target.id();
    let result = time_and_check(program, pid, start, count, expect, devnull);
    release(target);
    result
}

fn time_and_check(
    program: &str,
    pid: u32,
    start: u64,
    count: u64,
    expect: Expect,
    devnull: &File,
) -> Result<u64, String> {
    let stdio = || {
        devnull
            .try_clone()
            .map(Stdio::from)
            .map_err(|e| format!("dup /dev/null: {e}"))
    };
    let mut command = Command::new(program);
    command
        .arg(pid.to_string())
        .arg("0")
        .arg(start.to_string())
        .arg(count.to_string())
        .stdin(stdio()?)
        .stdout(stdio()?);
    let t0 = Instant::now();
    let status = command.status();
    let elapsed = t0.elapsed();
    let status = status.map_err(|e| format!("exec {program}: {e}"))?;
    let map_path = format!("/proc/{pid}/uid_map");
    let map = fs::read_to_string(&map_path).map_err(|e| format!("{map_path}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{program} {pid} 0 {start} {count}: {status} (uid_map now {map:?})"
        ));
    }
    let fields: Vec<&str> = map.split_whitespace().collect();
    let want = [0.to_string(), start.to_string(), count.to_string()];
    let ok = match expect {
        Expect::Map => map.lines().count() == 1 && fields == want,
        Expect::Empty => map.is_empty(),
    };
    if !ok {
        return Err(format!(
            "{program} {pid} 0 {start} {count}: exit 0 but {map_path} is {map:?}, expected {}",
            match expect {
                Expect::Map => format!("\"0 {start} {count}\""),
                Expect::Empty => "empty".to_string(),
            }
        ));
    }
    Ok(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}
