//! The learning loop in code: an agent answers and logs runs, a user corrects one,
//! the logs become training examples, a small router model is retrained on them
//! plus the shipped data, evaluated against the current model on the frozen test
//! split, and promoted only if it is not worse.
//!
//! Run: `cargo run --release --example retrain_loop` (about a minute on 2 cores).

use std::sync::Arc;

use toolforge::agent::{Agent, JsonlRunLog, Redactor, ToolRegistry};
use toolforge::core::{Feedback, RouteContext, RouteDecision, Router, ToolCall};
use toolforge::routers::{ChainRouter, ChainStage, RegexRouter, ToolForgeRouter};
use toolforge::trainer::{eval, logs, split, train};

async fn score(
    router: &dyn Router,
    context: &RouteContext,
    test: &[toolforge::trainer::Example],
) -> eval::EvalReport {
    let predictions = eval::predict(router, context, test, false).await;
    eval::evaluate(router.name(), test, &predictions, &context.tools)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let log_path = work.path().join("runs.jsonl");

    // 1. The agent answers with the default chain (embedded model, regex fallback) and logs runs.
    let mut registry = ToolRegistry::new();
    for tool in toolforge::tools::builtin_tools(&Default::default()) {
        registry.register(tool)?;
    }
    let current: Arc<dyn Router> = Arc::new(ToolForgeRouter::embedded());
    let chain = ChainRouter::new(vec![
        ChainStage::new(current.clone()).threshold(0.5),
        ChainStage::new(Arc::new(RegexRouter::builtin())),
    ]);
    let agent = Agent::builder(registry.clone(), Arc::new(chain))
        .log_sink(Arc::new(JsonlRunLog::open(&log_path, Redactor::default())?))
        .build();
    let mut runs = Vec::new();
    for query in [
        "what's 12% of 340",
        "how many grams in 3 ounces",
        "grab me the cheapest flights to Reykjavik in march",
    ] {
        let run = agent.ask(query).await?;
        println!("asked {query:?}: {:?}", run.decision.tool_set());
        runs.push(run);
    }

    // 2. A user corrects the last run (say it should have been a web search).
    logs::append_feedback(
        &log_path,
        &runs[2].run_id,
        Feedback::Corrected {
            decision: RouteDecision {
                calls: vec![ToolCall::new(
                    "web_search",
                    serde_json::json!({"query": "cheapest flights to Reykjavik in march"}),
                )],
                router: "user".into(),
                confidence: Some(1.0),
                unsupported: false,
            },
        },
    )?;

    // 3. Logs become examples: feedback first, then runs whose tools all succeeded.
    let (from_logs, report) =
        logs::examples_from_logs(&log_path, &Default::default(), &logs::LogsPolicy::default())?;
    println!("{report}");

    // 4. Retrain on a slice of the shipped data plus the logged examples (small, to stay quick).
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut train_set: Vec<_> = split::read_split(&data, "train")?
        .into_iter()
        .take(2000)
        .collect();
    train_set.extend(from_logs);
    let validation: Vec<_> = split::read_split(&data, "validation")?
        .into_iter()
        .take(300)
        .collect();
    let test = split::read_split(&data, "test")?;
    let tools = registry.specs();
    let config = train::TrainConfig {
        dim: 48,
        ff_dim: 96,
        max_epochs: 4,
        ..train::TrainConfig::default()
    };
    let candidate_dir = work.path().join("candidate");
    let trained = train::train(
        &train_set,
        &validation,
        &tools,
        &config,
        &candidate_dir,
        false,
    )?;
    println!(
        "candidate {} trained in {:.0} s",
        trained.model_version, trained.seconds
    );

    // 5. Evaluate both on the frozen test split; promote only if not worse.
    let context = RouteContext::new(tools);
    let candidate = ToolForgeRouter::new(&candidate_dir);
    let before = score(current.as_ref(), &context, &test).await;
    let after = score(&candidate, &context, &test).await;
    println!(
        "current {:.1}% / candidate {:.1}% tool-set accuracy on {} test queries",
        100.0 * before.tool_set_accuracy,
        100.0 * after.tool_set_accuracy,
        test.len()
    );
    if after.tool_set_accuracy >= before.tool_set_accuracy && after.router_errors == 0 {
        println!(
            "promote: copy {} over the current model directory",
            candidate_dir.display()
        );
    } else {
        println!("keep the current model: the candidate is worse");
    }
    Ok(())
}
