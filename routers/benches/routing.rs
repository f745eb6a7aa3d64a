//! Routing latency per router, one query at a time on one thread.
//! Run: `cargo bench -p toolforge-routers --bench routing`.

use std::sync::Arc;

use criterion::{criterion_main, BenchmarkId, Criterion};
use toolforge_core::{RouteContext, Router, ToolSpec};
use toolforge_routers::{ChainRouter, ChainStage, RegexRouter, ToolForgeRouter};

/// Specs of the nine built-in tools, as `toolforge tools --json` prints them.
const TOOL_SPECS: &str = include_str!("../../tests/fixtures/tool_specs.json");

const QUERIES: [&str; 8] = [
    "what's 15% of 2850",
    "weather in tokyo tomorrow",
    "say hello in Japanese",
    "convert 26.2 miles to kilometers",
    "who was marie curie",
    "latest news about the mars mission",
    "hey how are you doing today",
    "whats the weather in paris and what time is it there",
];

fn bench_routers(c: &mut Criterion) {
    let specs: Vec<ToolSpec> = serde_json::from_str(TOOL_SPECS).expect("tool specs fixture");
    let context = RouteContext::new(specs);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let regex: Arc<dyn Router> = Arc::new(RegexRouter::builtin());
    let toolforge: Arc<dyn Router> = Arc::new(match std::env::var_os("TOOLFORGE_MODEL_DIR") {
        Some(dir) => ToolForgeRouter::new(dir),
        None => ToolForgeRouter::embedded(),
    });
    let chain: Arc<dyn Router> = Arc::new(ChainRouter::new(vec![
        ChainStage::new(toolforge.clone()).threshold(0.5),
        ChainStage::new(regex.clone()),
    ]));
    let mut group = c.benchmark_group("route");
    for (name, router) in [
        ("regex", &regex),
        ("toolforge", &toolforge),
        ("chain", &chain),
    ] {
        group.bench_with_input(
            BenchmarkId::new(name, "8 queries"),
            &QUERIES,
            |b, queries| {
                b.iter(|| {
                    for query in queries {
                        let _ = runtime.block_on(router.route(query, &context));
                    }
                })
            },
        );
    }
    group.finish();
}

/// The group lives in a private module: criterion's macro makes a `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::bench_routers);
}
criterion_main!(group::benches);
