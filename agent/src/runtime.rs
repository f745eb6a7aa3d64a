//! Assembles a ready-to-run agent from an [`AgentConfig`]: the tool registry
//! (built-ins, plugins, `autonomous_task`), the named routers and the log sink.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toolforge_core::{RouteContext, Router};
use toolforge_routers::regex_router::RuleError;
use toolforge_routers::{
    ChainRouter, ChainStage, GenerativeRouter, NewToolRouter, RegexRouter, ToolForgeRouter,
};

use crate::agent::Agent;
use crate::autonomous::{AutonomousTask, AUTONOMOUS_TASK};
use crate::config::AgentConfig;
use crate::executor::Executor;
use crate::registry::RegistryError;
use crate::registry::ToolRegistry;
use crate::responder::LlmResponder;
use crate::runlog::{JsonlRunLog, LogError, Redactor, RunSink};

/// Why a router, registry or agent could not be assembled from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The `[regex] rules` file could not be read.
    #[error("reading regex rules {path}: {source}")]
    ReadRules {
        /// The rules file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The `[regex] rules` file is not valid.
    #[error("loading regex rules {path}: {source}")]
    Rules {
        /// The rules file.
        path: PathBuf,
        /// What is wrong with it.
        source: RuleError,
    },
    /// The rules compiled into the binary failed to load (a build defect).
    #[error("loading the built-in regex rules: {0}")]
    BuiltinRules(RuleError),
    /// `router = "chain"` with no `[[chain.stages]]`.
    #[error("the [chain] table has no stages")]
    EmptyChain,
    /// A chain stage names `chain`.
    #[error("a chain cannot contain `chain` itself")]
    NestedChain,
    /// No router of [`ROUTERS`] has this name.
    #[error("unknown router `{0}`; choose one of: {names}", names = router_names())]
    UnknownRouter(String),
    /// A tool could not be registered (e.g. a duplicate name).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The run log could not be opened.
    #[error(transparent)]
    RunLog(#[from] LogError),
    /// `generative` was named with no model to run.
    #[error("the generative router needs a model: set [generative] model = \"path/to/model.gguf\" or TOOLFORGE_GENERATIVE_MODEL (scripts/fetch-smollm2.sh fetches SmolLM2-135M-Instruct)")]
    NoGenerativeModel,
    /// Building panicked (a defect, or a plugin's initialiser).
    #[error("building the agent failed: {0}")]
    Panicked(String),
}

/// A router the configuration and `--router` can name: its name, one line of
/// help, and how it is built from the configuration.
pub struct RouterFactory {
    /// The name `--router` and `[chain]` stages use.
    pub name: &'static str,
    /// One line for command-line help.
    pub help: &'static str,
    /// Builds the router from the configuration.
    pub build: BuildFn,
}

/// How a [`RouterFactory`] builds its router.
pub type BuildFn = fn(&AgentConfig, &Shared) -> Result<Arc<dyn Router>, BuildError>;

/// What the routers of one build share: the learned model, loaded once however
/// many stages (`toolforge`, `new_tools`) read it. One `Shared` serves one
/// configuration: the first call fixes which model it holds.
#[derive(Default)]
pub struct Shared {
    model: std::sync::OnceLock<ToolForgeRouter>,
}

impl Shared {
    /// The model router of this build (`[model] dir`, else the embedded
    /// default); every clone shares one loaded model.
    pub fn model_router(&self, config: &AgentConfig) -> ToolForgeRouter {
        self.model
            .get_or_init(|| match &config.model.dir {
                Some(dir) => ToolForgeRouter::new(dir),
                None => ToolForgeRouter::embedded(),
            })
            .clone()
    }
}

/// Every router that can be named, in the order help lists them. A new kind of
/// stage is its type plus one entry here.
pub const ROUTERS: &[RouterFactory] = &[
    RouterFactory {
        name: "chain",
        help: "the [chain] stages in order (default: new_tools, then toolforge, falling back to regex)",
        build: build_chain,
    },
    RouterFactory {
        name: "toolforge",
        help: "the learned router model ([model] dir, else the embedded default)",
        build: build_model,
    },
    RouterFactory {
        name: "new_tools",
        help: "tools the model was not trained on, by their [regex] rules, else by prototypes of their example requests (abstains when there are none)",
        build: build_new_tools,
    },
    RouterFactory {
        name: "generative",
        help: "an instruct LLM writing the call ([generative] model = a GGUF file or a Qwen2 safetensors folder, adapter = a LoRA folder; constrained to valid calls unless constrained = false)",
        build: build_generative,
    },
    RouterFactory {
        name: "regex",
        help: "the rule-based baseline ([regex] rules extend the built-in ones)",
        build: build_regex,
    },
];

/// The routers' names, comma-separated, for messages.
pub fn router_names() -> String {
    ROUTERS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per router (`name: help`), for command-line help.
pub fn router_help() -> String {
    ROUTERS
        .iter()
        .map(|f| format!("{}: {}", f.name, f.help))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds a router by name from the configuration.
pub fn build_router(name: &str, config: &AgentConfig) -> Result<Arc<dyn Router>, BuildError> {
    build_shared(name, config, &Shared::default())
}

fn build_shared(
    name: &str,
    config: &AgentConfig,
    shared: &Shared,
) -> Result<Arc<dyn Router>, BuildError> {
    let factory = ROUTERS
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| BuildError::UnknownRouter(name.to_string()))?;
    (factory.build)(config, shared)
}

fn build_regex(config: &AgentConfig, _: &Shared) -> Result<Arc<dyn Router>, BuildError> {
    Ok(Arc::new(regex_router(config)?))
}

/// The built-in rules plus the configuration's `[regex] rules`.
fn regex_router(config: &AgentConfig) -> Result<RegexRouter, BuildError> {
    let router = match &config.regex.rules {
        Some(path) => {
            let extra = std::fs::read_to_string(path).map_err(|source| BuildError::ReadRules {
                path: path.clone(),
                source,
            })?;
            RegexRouter::with_extra_rules(&extra).map_err(|source| BuildError::Rules {
                path: path.clone(),
                source,
            })?
        }
        None => RegexRouter::try_builtin().map_err(BuildError::BuiltinRules)?,
    };
    Ok(router)
}

fn build_model(config: &AgentConfig, shared: &Shared) -> Result<Arc<dyn Router>, BuildError> {
    let router = shared.model_router(config);
    Ok(Arc::new(match config.model.threshold {
        Some(threshold) => router.with_threshold(threshold),
        None => router,
    }))
}

fn build_generative(config: &AgentConfig, _: &Shared) -> Result<Arc<dyn Router>, BuildError> {
    let path = config
        .generative
        .model
        .clone()
        .ok_or(BuildError::NoGenerativeModel)?;
    Ok(Arc::new(
        GenerativeRouter::new(path)
            .adapter(config.generative.adapter.clone())
            .constrained(config.generative.constrained)
            .require_call(config.generative.require_call),
    ))
}

fn build_new_tools(config: &AgentConfig, shared: &Shared) -> Result<Arc<dyn Router>, BuildError> {
    let router = NewToolRouter::new(Arc::new(shared.model_router(config)))
        .with_rules(Arc::new(regex_router(config)?));
    Ok(Arc::new(router))
}

fn build_chain(config: &AgentConfig, shared: &Shared) -> Result<Arc<dyn Router>, BuildError> {
    if config.chain.stages.is_empty() {
        return Err(BuildError::EmptyChain);
    }
    let mut stages = Vec::new();
    for stage in &config.chain.stages {
        if stage.router == "chain" {
            return Err(BuildError::NestedChain);
        }
        let mut built = ChainStage::new(build_shared(&stage.router, config, shared)?)
            .threshold(stage.threshold);
        if let Some(ms) = stage.budget_ms {
            built = built.budget(Duration::from_millis(ms));
        }
        stages.push(built);
    }
    Ok(Arc::new(
        ChainRouter::new(stages).best_guess(config.chain.best_guess),
    ))
}

/// The executor described by the configuration.
pub fn build_executor(config: &AgentConfig) -> Executor {
    config.executor.tool_timeouts_ms.iter().fold(
        Executor::new(Duration::from_millis(config.executor.tool_timeout_ms)),
        |executor, (tool, ms)| executor.with_timeout(tool, Duration::from_millis(*ms)),
    )
}

/// Built-in tools plus plugins, then `autonomous_task` over them. Plugins that
/// fail to load are reported through `tracing` and skipped.
pub fn build_registry(
    config: &AgentConfig,
    router: Arc<dyn Router>,
) -> Result<ToolRegistry, BuildError> {
    let mut registry = ToolRegistry::new();
    for tool in toolforge_tools::builtin_tools(&config.tools) {
        registry.register(tool)?;
    }
    let (plugins, errors) = toolforge_tools::plugin::load_plugins(&config.tools.plugins);
    for error in errors {
        eprintln!("warning: plugin not loaded: {error}");
    }
    for plugin in plugins {
        let name = plugin.spec().name;
        let refused = if name == AUTONOMOUS_TASK {
            Some(RegistryError::Duplicate(name))
        } else {
            registry.register(plugin).err()
        };
        if let Some(error) = refused {
            eprintln!("warning: plugin not registered: {error}");
        }
    }
    let autonomous = AutonomousTask::new(
        router,
        registry.clone(),
        build_executor(config),
        config.llm.chat_model(),
        config.autonomous,
    );
    registry.register(Arc::new(autonomous))?;
    Ok(registry)
}

/// A full agent for `router_name`, logging runs to the configured file when the
/// config says so.
pub fn build_agent(config: &AgentConfig, router_name: &str) -> Result<Agent, BuildError> {
    let sink: Option<Arc<dyn RunSink>> = if config.log.enabled {
        Some(Arc::new(JsonlRunLog::open(
            &config.log.path,
            Redactor::new(config.secrets()),
        )?))
    } else {
        None
    };
    build_agent_with_sink(config, router_name, sink)
}

/// A full agent for `router_name` writing its runs to `sink` (a service's
/// [`crate::LogWriter`]), whatever `[log]` says.
pub fn build_agent_with_sink(
    config: &AgentConfig,
    router_name: &str,
    sink: Option<Arc<dyn RunSink>>,
) -> Result<Agent, BuildError> {
    let router = build_router(router_name, config)?;
    let registry = build_registry(config, router.clone())?;
    let mut builder = Agent::builder(registry, router)
        .executor(build_executor(config))
        .redactor(Redactor::new(config.secrets()))
        .answer_budget(config.llm.answer_budget());
    if let Some(model) = config.llm.chat_model() {
        builder = builder.responder(Arc::new(LlmResponder::new(model)));
    }
    if let Some(sink) = sink {
        builder = builder.log_sink(sink);
    }
    Ok(builder.build())
}

/// The routing context (tool specs) of the configured tools.
pub fn route_context(
    config: &AgentConfig,
    router: Arc<dyn Router>,
) -> Result<RouteContext, BuildError> {
    Ok(build_registry(config, router)?.context())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routers_of_one_build_share_one_model() {
        let config = AgentConfig::default();
        let shared = Shared::default();
        let first = shared.model_router(&config);
        assert!(first.shares_model_with(&shared.model_router(&config)));
        let elsewhere = Shared::default().model_router(&config);
        assert!(!first.shares_model_with(&elsewhere));
    }
}
