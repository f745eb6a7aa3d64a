//! `toolforge serve` as a process: SIGHUP reloads the model, SIGTERM stops it
//! with every served run in the log, and SIGKILL mid-load costs at most the line
//! being written, which the trainer's reader skips and counts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

/// A running `toolforge serve` on a free loopback port, and its stderr lines.
struct Service {
    child: Child,
    url: String,
    stderr: Receiver<String>,
}

fn serve(log: &Path) -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["serve", "--bind", "127.0.0.1:0", "--router", "regex"])
        .env("TOOLFORGE_LOG_PATH", log)
        .env_remove("TOOLFORGE_LOG")
        .env_remove("TOOLFORGE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run toolforge serve");
    let (sender, stderr) = channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let line = wait_for(&stderr, "serving on");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the address")
        .to_string();
    Service { child, url, stderr }
}

/// The first stderr line containing `needle` (within 60 s).
fn wait_for(stderr: &Receiver<String>, needle: &str) -> String {
    loop {
        match stderr.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no stderr line with `{needle}`: {e}"),
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

async fn route(client: &reqwest::Client, url: &str, query: &str) -> Option<u16> {
    let response = client
        .post(format!("{url}/v1/route"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    response.bytes().await.ok()?;
    Some(status)
}

/// The log's lines: (whole lines that parse, lines that do not, last line torn?).
fn read_log(path: &Path) -> (usize, usize, bool) {
    let bytes = std::fs::read(path).unwrap();
    let torn = !bytes.is_empty() && bytes.last() != Some(&b'\n');
    let text = String::from_utf8_lossy(&bytes);
    let (mut good, mut bad) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if serde_json::from_str::<Value>(line).is_ok() {
            good += 1;
        } else {
            bad += 1;
        }
    }
    (good, bad, torn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_keeps_every_served_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let mut service = serve(&log);
    let client = reqwest::Client::new();
    let mut served = 0;
    for query in ["what is 2+2", "weather in Oslo", "define serendipity"] {
        assert_eq!(route(&client, &service.url, query).await, Some(200));
        served += 1;
    }
    signal(&service.child, "HUP");
    wait_for(&service.stderr, "reloaded on SIGHUP");
    assert_eq!(
        route(&client, &service.url, "translate hello to french").await,
        Some(200)
    );
    served += 1;
    signal(&service.child, "TERM");
    wait_for(&service.stderr, "toolforge stopped");
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let (good, bad, torn) = read_log(&log);
    assert_eq!((good, bad, torn), (served, 0, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_costs_at_most_the_line_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let mut service = serve(&log);
    let url = service.url.clone();
    let load: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut ok = 0;
                while let Some(200) = route(&client, &url, &format!("what is {i}*{ok}")).await {
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    let mut answered = 0;
    for task in load {
        answered += task.await.unwrap();
    }
    assert!(answered > 0);
    let (good, bad, torn) = read_log(&log);
    // A request is answered only once its line is written, so every answered run
    // is in the file (plus at most the four in flight), and nothing but the
    // last line can be damaged.
    assert_eq!(bad, usize::from(torn));
    assert!(
        good >= answered && good <= answered + 4,
        "{good} lines for {answered} answers"
    );

    // The trainer's reader takes the log as the kill left it.
    let examples = dir.path().join("from_logs.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["data", "from-logs", "--logs"])
        .arg(&log)
        .arg("--out")
        .arg(&examples)
        .env("TOOLFORGE_LOG", "off")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(&format!("{good} runs")), "{report}");
    assert_eq!(report.contains("torn last line skipped"), torn, "{report}");

    // A restart ends a torn line first and appends after it.
    let mut again = serve(&log);
    let client = reqwest::Client::new();
    assert_eq!(route(&client, &again.url, "what is 6*7").await, Some(200));
    signal(&again.child, "TERM");
    assert!(again.child.wait().unwrap().success());
    let (after, bad_after, torn_after) = read_log(&log);
    assert_eq!(
        (after, bad_after, torn_after),
        (good + 1, usize::from(torn), false)
    );
}
