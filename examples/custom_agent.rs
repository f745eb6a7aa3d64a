//! A user's own agent, built in code: the nine built-in tools plus a custom
//! in-process `shipping_cost` tool, routed by the regex router extended with one
//! rule for the new tool, answered offline.
//!
//! Run: `cargo run --example custom_agent -- "how much to ship 3 kg to Lisbon"`

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge::agent::{Agent, ToolRegistry};
use toolforge::core::{Tool, ToolError};
use toolforge::routers::RegexRouter;

/// Arguments of the custom tool; its JSON schema is generated from this struct.
#[derive(Deserialize, JsonSchema)]
struct ShippingArgs {
    /// Parcel weight in kilograms.
    weight_kg: f64,
    /// Destination city.
    destination: String,
}

/// Flat-rate shipping: 4.50 base plus 2.10 per kg.
struct ShippingCost;

#[async_trait]
impl Tool for ShippingCost {
    type Args = ShippingArgs;

    fn name(&self) -> &str {
        "shipping_cost"
    }

    fn description(&self) -> &str {
        "Price of shipping a parcel of a given weight to a destination."
    }

    async fn call(&self, args: ShippingArgs) -> Result<Value, ToolError> {
        if !(0.0..=30.0).contains(&args.weight_kg) {
            return Err(ToolError::InvalidArguments("weight must be 0-30 kg".into()));
        }
        let price = 4.5 + 2.1 * args.weight_kg;
        Ok(json!({
            "price_eur": price,
            "summary": format!("Shipping {} kg to {} costs €{price:.2}.", args.weight_kg, args.destination),
        }))
    }
}

/// One extra regex rule for the custom tool, in the same TOML format as the built-in rules.
const SHIPPING_RULES: &str = include_str!("custom_agent_rules.toml");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let query = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "how much to ship 3 kg to Lisbon".to_string());

    let mut registry = ToolRegistry::new();
    for tool in toolforge::tools::builtin_tools(&Default::default()) {
        registry.register(tool)?;
    }
    registry.register(Arc::new(ShippingCost))?;

    let router = RegexRouter::with_extra_rules(SHIPPING_RULES)?;
    let agent = Agent::builder(registry, Arc::new(router)).build();

    let run = agent.ask(&query).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&toolforge::agent::AskOutput::from(&run))?
    );
    Ok(())
}
