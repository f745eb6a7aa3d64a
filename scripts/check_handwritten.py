#!/usr/bin/env python3
"""Check hand-written routing lines: JSON, known tools, schema-valid arguments, unsupported flag.

usage: python3 scripts/check_handwritten.py FILE.jsonl [...]
Prints each problem with file and line; exits 1 when there is any.
"""
import json, sys

TOOLS = {
    "web_search": ({"query": str}, {"max_results": int}),
    "calculator": ({"expression": str}, {}),
    "weather": ({"location": str}, {"date": str}),
    "wikipedia": ({"topic": str}, {}),
    "translate": ({"text": str, "target_language": str}, {"source_language": str}),
    "dictionary": ({"word": str}, {}),
    "datetime": ({}, {"location": str, "timezone": str}),
    "unit_converter": ({"value": (int, float), "from_unit": str, "to_unit": str}, {}),
    "autonomous_task": ({"goal": str}, {}),
}


def check_line(raw):
    ex = json.loads(raw)
    q = ex.get("query")
    if not isinstance(q, str) or not q.strip():
        return "empty or missing query"
    calls = ex.get("calls")
    if not isinstance(calls, list):
        return "calls must be a list"
    if ex.get("unsupported") and calls:
        return "unsupported lines have no calls"
    for c in calls:
        tool = c.get("tool")
        if tool not in TOOLS:
            return f"unknown tool {tool!r}"
        req, opt = TOOLS[tool]
        args = c.get("arguments", {})
        for k, t in req.items():
            if k not in args:
                return f"{tool}: missing {k}"
        for k, v in args.items():
            t = req.get(k) or opt.get(k)
            if t is None:
                return f"{tool}: unknown argument {k}"
            if not isinstance(v, t) or isinstance(v, bool):
                return f"{tool}: {k} has the wrong type"
            if isinstance(v, str) and not v.strip():
                return f"{tool}: {k} is empty"
    return None


def main():
    bad = 0
    for path in sys.argv[1:]:
        seen = set()
        for i, raw in enumerate(open(path, encoding="utf-8"), 1):
            if not raw.strip():
                continue
            try:
                err = check_line(raw)
                q = json.loads(raw)["query"].strip().lower()
                if err is None and q in seen:
                    err = "duplicate query"
                seen.add(q)
            except (json.JSONDecodeError, AttributeError) as e:
                err = f"not JSON: {e}"
            if err:
                bad += 1
                print(f"{path}:{i}: {err}")
    print(f"{bad} problems")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
