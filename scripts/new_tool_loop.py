#!/usr/bin/env python3
"""The new-tool loop end to end, through the CLI as a user runs it: register
plugin tools, route unseen requests for them (before retraining: the
`new_tools` stage), use the agent and correct its runs (`ask`, `feedback
--correct`), retrain (warm start, paired gate), promote, route again.

Usage:
  scripts/new_tool_loop.py --bin target/release/toolforge \
      --plugin target/release/libtoolforge_plugin_dice.so \
      --plugin examples/plugin-password-c/libtoolforge_plugin_password.so \
      --learn dice=A_dice.jsonl --learn password=A_password.jsonl \
      --unseen dice=B_dice.jsonl --unseen password=B_password.jsonl \
      --runs 20 --work /tmp/new-tool-loop [--guard FILE ...]

Query files are JSON Lines {"query", "arguments"} for their tool. `--runs N`
asks and corrects the first N learn queries of each tool. Prints, per tool:
the share of unseen requests routed to it and its argument F1, before and
after, the retrain's wall time and the gate's report.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def route(bin_path, config, env, queries):
    text = "".join(json.dumps({"id": i, "query": q}) + "\n" for i, q in enumerate(queries))
    out = subprocess.run([bin_path, "route", "--config", config], input=text,
                         capture_output=True, text=True, env=env, check=True).stdout
    decisions = {}
    for line in out.splitlines():
        d = json.loads(line)
        decisions[d["id"]] = d
    return [decisions.get(i, {}) for i in range(len(queries))]


def value_f1(gold, predicted):
    """Exact for numbers and booleans, token F1 for strings (as `toolforge eval`)."""
    if isinstance(gold, str) and isinstance(predicted, str):
        g, p = gold.lower().split(), predicted.lower().split()
        common = sum(min(g.count(t), p.count(t)) for t in set(g))
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(g)
        return 2 * precision * recall / (precision + recall)
    return 1.0 if gold == predicted else 0.0


def score(tool, items, decisions):
    """Share routed to `tool` (one call) and argument F1 over gold arguments
    plus spurious predicted ones, on the items routed right."""
    reached = 0
    f1_sum, f1_n = 0.0, 0
    for item, decision in zip(items, decisions):
        calls = decision.get("calls") or []
        if len(calls) == 1 and calls[0]["tool"] == tool:
            reached += 1
            gold, pred = item["arguments"], calls[0].get("arguments", {})
            for name in set(gold) | set(pred):
                f1_n += 1
                if name in gold and name in pred:
                    f1_sum += value_f1(gold[name], pred[name])
    return reached / max(1, len(items)), (f1_sum / f1_n if f1_n else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/toolforge")
    ap.add_argument("--plugin", action="append", default=[])
    ap.add_argument("--learn", action="append", default=[])
    ap.add_argument("--unseen", action="append", default=[])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--work", default="/tmp/new-tool-loop")
    ap.add_argument("--data", default="data")
    ap.add_argument("--guard", action="append", default=[])
    ap.add_argument("--shuffled-from", metavar="FILE",
                    help="also ask the first --runs queries of FILE (a split) and correct each "
                         "with another line's calls: wrong labels, a candidate the gate must refuse")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, "runs.jsonl")
    if os.path.exists(log):
        os.remove(log)
    model_dir = os.path.join(args.work, "model")
    config = os.path.join(args.work, "toolforge.toml")
    plugins = ", ".join(json.dumps(os.path.abspath(p)) for p in args.plugin)
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"[tools]\nplugins = [{plugins}]\n")
    env = dict(os.environ, TOOLFORGE_LOG_PATH=log)
    env.pop("TOOLFORGE_MODEL_DIR", None)
    learn = {k: read_jsonl(v) for k, v in (s.split("=", 1) for s in args.learn)}
    unseen = {k: read_jsonl(v) for k, v in (s.split("=", 1) for s in args.unseen)}

    def report(label, env_for_route):
        for tool, items in unseen.items():
            decisions = route(args.bin, config, env_for_route, [i["query"] for i in items])
            share, f1 = score(tool, items, decisions)
            print(f"  {label:<22} {tool:<10} unseen reaching the tool {share:6.1%}  argument F1 {f1:.3f}  ({len(items)} requests)")

    print("before retraining (prototypes and nothing else for the new tools):")
    report("before", env)

    runs = []
    for tool, items in learn.items():
        runs += [(i["query"], [{"tool": tool, "arguments": i["arguments"]}]) for i in items[: args.runs]]
    if args.shuffled_from:
        lines = read_jsonl(args.shuffled_from)[: args.runs]
        # Each query gets the next line's calls: labels that do not fit.
        runs += [(line["query"], lines[(n + 1) % len(lines)].get("calls", []))
                 for n, line in enumerate(lines)]
    asked = 0
    for query, calls in runs:
        out = subprocess.run([args.bin, "ask", "--json", "--config", config, query],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            continue
        with open(log, encoding="utf-8") as f:
            run_id = json.loads(f.readlines()[-1])["run_id"]
        subprocess.run([args.bin, "feedback", "--config", config, "--log", log, run_id,
                        "--correct", json.dumps({"calls": calls})],
                       capture_output=True, text=True, env=env, check=True)
        asked += 1
    print(f"{asked} runs asked and corrected")

    cmd = [args.bin, "retrain", "--config", config, "--logs", log, "--data", args.data,
           "--out", model_dir]
    for g in args.guard:
        cmd += ["--guard", g]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - started
    print(out.stdout)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        sys.exit(1)
    print(f"retrain wall time {wall:.1f} s")
    if os.path.isfile(os.path.join(model_dir, "config.json")):
        print("after retraining (promoted model):")
        report("after", dict(env, TOOLFORGE_MODEL_DIR=model_dir))


if __name__ == "__main__":
    main()
