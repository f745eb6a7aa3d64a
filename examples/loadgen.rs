//! A load generator for `toolforge serve`, loopback only and bounded in time:
//! for each connection count it keeps that many keep-alive connections busy
//! with `POST /v1/route` for a fixed time and reports requests per second, p50
//! and p99 latency, and how many requests were answered 200 (each of which must
//! be one run-log line).
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --seconds 10 --connections 1,16,64 [--batch 100]
//! ```
//! With `--batch N` each request routes N queries (`{"queries": [...]}`), and the
//! table counts queries.
//! `scripts/load_test.sh` starts a server on a fresh log, runs this, stops the
//! server and checks the log against the answered count.

use std::time::{Duration, Instant};

use serde_json::json;

/// Varied requests: every tool, direct answers and out-of-scope ones.
const QUERIES: [&str; 16] = [
    "what's the weather in Lisbon tomorrow",
    "what is 17% of 2350",
    "convert 12 miles to km",
    "translate good morning to Spanish",
    "define ephemeral",
    "who was Ada Lovelace",
    "latest news about the Mars rover",
    "what time is it in Tokyo",
    "hi there",
    "set an alarm for 7am",
    "do i need an umbrella in london",
    "how many ounces in 2 liters",
    "explain recursion simply",
    "compare three laptops under 1000 dollars and plan which to buy",
    "sqrt(2)*pi",
    "thanks!",
];

struct Args {
    url: String,
    seconds: u64,
    connections: Vec<usize>,
    batch: usize,
    token: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:8080".into(),
        seconds: 10,
        connections: vec![1, 16, 64],
        batch: 1,
        token: std::env::var("TOOLFORGE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--connections" => {
                args.connections = value()?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--connections: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--batch" => args.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let host = args.url.trim_start_matches("http://");
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err(format!(
            "{} is not a loopback address; this tool loads loopback only",
            args.url
        ));
    }
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if args.seconds == 0 || args.seconds > 600 {
        return Err("--seconds must be between 1 and 600".into());
    }
    Ok(args)
}

/// One connection's loop until `until`: latencies of 200 answers, and other outcomes.
async fn connection(
    url: String,
    token: Option<String>,
    until: Instant,
    offset: usize,
    batch: usize,
) -> (Vec<Duration>, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut i = offset;
    while Instant::now() < until {
        let body = if batch == 1 {
            json!({ "query": QUERIES[i % QUERIES.len()] })
        } else {
            let queries: Vec<&str> = (i..i + batch).map(|j| QUERIES[j % QUERIES.len()]).collect();
            json!({ "queries": queries })
        };
        i += batch;
        let mut request = client.post(&url).json(&body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let start = Instant::now();
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                if response.bytes().await.is_ok() {
                    latencies.push(start.elapsed());
                } else {
                    failures += 1;
                }
            }
            _ => failures += 1,
        }
    }
    (latencies, failures)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let url = format!("{}/v1/route", args.url.trim_end_matches('/'));
    let mut answered_total = 0u64;
    let unit = if args.batch == 1 {
        "requests"
    } else {
        "queries"
    };
    println!(
        "{:>11} {:>10} {:>10} {:>10} {:>9} {:>8}",
        "connections", unit, "per s", "p50 ms", "p99 ms", "failed"
    );
    for &connections in &args.connections {
        let until = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                tokio::spawn(connection(
                    url.clone(),
                    args.token.clone(),
                    until,
                    c * 7,
                    args.batch,
                ))
            })
            .collect();
        let mut latencies = Vec::new();
        let mut failures = 0;
        for task in tasks {
            if let Ok((mut l, f)) = task.await {
                latencies.append(&mut l);
                failures += f;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let queries = latencies.len() * args.batch;
        answered_total += queries as u64;
        println!(
            "{:>11} {:>10} {:>10.0} {:>10.3} {:>9.3} {:>8}",
            connections,
            queries,
            queries as f64 / elapsed,
            percentile(&latencies, 50.0).as_secs_f64() * 1e3,
            percentile(&latencies, 99.0).as_secs_f64() * 1e3,
            failures
        );
    }
    println!("answered {answered_total}");
    std::process::ExitCode::SUCCESS
}
