//! The OpenAPI 3.1 description of the service (`GET /openapi.json`): the
//! endpoints, bodies and error answers of contract 1.1.

use serde_json::{json, Value};

/// The OpenAPI document.
pub fn document() -> Value {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let json_body = |schema: &str| json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let ok = |description: &str, schema: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let guarded = |mut responses: Value| {
        for (code, text) in [
            ("400", "bad input"),
            ("401", "auth is on and the token is missing or wrong"),
            ("413", "body, batch or query too large"),
            ("503", "saturated or shutting down"),
            ("504", "the request ran past its deadline"),
        ] {
            responses[code] = error(text);
        }
        responses
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ToolForge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A tool-using agent whose router is learned from its own traffic (public contract 1.1)."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/route": {"post": {
                "summary": "Route one query, or a batch in order (a bad item gets {\"error\"} in its place). Each routed query is logged as a run without calls.",
                "requestBody": json_body("RouteRequest"),
                "responses": guarded(json!({"200": ok("a decision, or {\"decisions\": [...]} for a batch", "RouteResponse")}))
            }},
            "/v1/ask": {"post": {
                "summary": "Run the whole agent: route, call the tools, answer.",
                "requestBody": json_body("Query"),
                "responses": guarded(json!({"200": ok("the run", "AskResponse")}))
            }},
            "/v1/feedback": {"post": {
                "summary": "A verdict on a logged run: right, or the decision that should have been made.",
                "requestBody": json_body("FeedbackRequest"),
                "responses": guarded(json!({
                    "200": {"description": "recorded", "content": {"application/json": {"schema": {"type": "object", "properties": {"recorded": {"type": "boolean"}, "run_id": {"type": "string"}}}}}},
                    "404": error("no such run in the run log")
                }))
            }},
            "/v1/tools": {"get": {
                "summary": "The registered tools and their JSON schemas.",
                "responses": {"200": ok("the tools", "Tools"), "401": error("auth is on and the token is missing or wrong")}
            }},
            "/v1/admin/reload": {"post": {
                "summary": "Build the agent again from the configuration (model, rules, plugins) and swap it in; requests in flight finish on the old one. SIGHUP does the same.",
                "responses": guarded(json!({
                    "200": {"description": "swapped", "content": {"application/json": {"schema": {"type": "object", "properties": {"reloaded": {"type": "boolean"}, "previous": {"type": "string"}, "model_version": {"type": "string"}}}}}},
                    "500": error("the new agent could not be built; the old one still serves")
                }))
            }},
            "/healthz": {"get": {
                "summary": "200 when ready (no auth).",
                "security": [],
                "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ok"}, "model_version": {"type": "string"}}}}}}, "503": error("shutting down")}
            }},
            "/metrics": {"get": {
                "summary": "Prometheus text: requests, latency per endpoint, router stage and tool, tool errors, fallbacks, unsupported requests, saturation, run log writes.",
                "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "Only when the service was started with a token (TOOLFORGE_API_TOKEN)."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Query": {"type": "object", "required": ["query"], "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 10000}}},
                "RouteRequest": {"oneOf": [
                    {"$ref": "#/components/schemas/Query"},
                    {"type": "object", "required": ["queries"], "properties": {"queries": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/Query"}]}}}}
                ]},
                "ToolCall": {"type": "object", "required": ["tool", "arguments"], "properties": {"tool": {"type": "string"}, "arguments": {"type": "object"}}},
                "Decision": {"type": "object", "required": ["calls", "router", "confidence"], "properties": {
                    "calls": {"type": "array", "items": {"$ref": "#/components/schemas/ToolCall"}},
                    "router": {"type": "string"},
                    "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                    "unsupported": {"type": "boolean", "description": "present and true when no registered tool can serve the request"},
                    "latency_us": {"type": "integer"},
                    "run_id": {"type": "string"}
                }},
                "RouteResponse": {"oneOf": [
                    {"$ref": "#/components/schemas/Decision"},
                    {"type": "object", "required": ["decisions"], "properties": {"decisions": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/Decision"}, {"$ref": "#/components/schemas/Error"}]}}}}
                ]},
                "AskResponse": {"type": "object", "required": ["query", "router", "calls", "answer", "run_id"], "properties": {
                    "query": {"type": "string"},
                    "router": {"type": "string"},
                    "calls": {"type": "array", "items": {"type": "object", "required": ["tool", "arguments"], "properties": {"tool": {"type": "string"}, "arguments": {"type": "object"}, "output": {}, "error": {"type": "string"}}}},
                    "unsupported": {"type": "boolean"},
                    "answer": {"type": "string"},
                    "run_id": {"type": "string"}
                }},
                "FeedbackRequest": {"type": "object", "required": ["run_id"], "properties": {
                    "run_id": {"type": "string"},
                    "ok": {"const": true},
                    "correct": {"type": "object", "properties": {"calls": {"type": "array", "items": {"$ref": "#/components/schemas/ToolCall"}}, "unsupported": {"type": "boolean"}}}
                }},
                "Tools": {"type": "object", "required": ["tools"], "properties": {"tools": {"type": "array", "items": {"type": "object", "required": ["name", "description", "parameters"], "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "parameters": {"type": "object"}}}}}}
            }
        }
    })
}
