#!/usr/bin/env python3
"""Checks, against a running Prometheus, that the PromQL of the alerting and recording rules
it has loaded and of a Grafana dashboard names only series that exist, and that every
dashboard query runs. Prints one "ok: ..." or "FAILED: ..." line per check.

  promql_check.py PROMETHEUS_URL DASHBOARD_JSON

Selectors are taken from the expressions by a small PromQL tokenizer: an identifier that is
not a function or aggregation (followed by "(", "by" or "without"), not a keyword, not a
label name in by/without/on/ignoring/group_left/group_right (...), with its {matchers}.
Skipped: `up` (Prometheus's own), kube-state-metrics' kube_* (not ours), and recording-rule
outputs (names with ':'), which exist only once their inputs have traffic. Grafana's
variables are replaced: $__rate_interval by 1m, any other $var by .* (they sit in =~ matchers).
Standard library only."""
import json
import re
import sys
import urllib.parse
import urllib.request

TOKEN = re.compile(r'''
   (?P<ws>\s+)
  |(?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  |(?P<brace>\{(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[^{}"'])*\})
  |(?P<bracket>\[[^\]]*\])
  |(?P<num>(?:\d+(?:ms|[smhdwy]))+\b|0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  |(?P<op>.)
''', re.X | re.S)
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2", "start", "end"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def grafana(query):
    query = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "1m", query)
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", query)


def selectors(query):
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(query) if m.lastgroup != "ws"]
    found = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in GROUPING:
            if following[1] == "(":
                depth, i = 0, i + 1
                while i < len(tokens):
                    depth += {"(": 1, ")": -1}.get(tokens[i][1], 0)
                    if depth == 0:
                        break
                    i += 1
            i += 1
            continue
        aggregation = following[0] == "ident" and following[1] in ("by", "without")  # sum by (...) (...)
        if kind == "ident" and following[1] != "(" and not aggregation and text.lower() not in KEYWORDS:
            found.append(text + (following[1] if following[0] == "brace" else ""))
        i += 1
    return found


def wanted(selector):
    name = selector.split("{", 1)[0]
    return name != "up" and ":" not in name and not name.startswith("kube_")


def get(base, path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:  # 400: a query that does not parse
        return json.load(error)


def dashboard_queries(dashboard):
    out = []
    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))
    walk(dashboard.get("panels", []))
    return out


def main():
    base, dashboard_file = sys.argv[1].rstrip("/"), sys.argv[2]
    dashboard = json.load(open(dashboard_file))
    rules = get(base, "/api/v1/rules")
    queries = []
    for group in rules["data"]["groups"]:
        for rule in group["rules"]:
            queries.append(("rule " + rule["name"], rule["query"]))
    panels = dashboard_queries(dashboard)
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and query:
            match = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query)
            panels.append(("variable " + variable["name"], match.group(1) if match else query))
    if not queries:
        print("FAILED: Prometheus has loaded no rules")
    if not panels:
        print("FAILED: the dashboard has no queries")

    # Every series a rule or a panel selects exists.
    users = {}
    for source, query in queries + [(s, grafana(q)) for s, q in panels]:
        for selector in selectors(query):
            if wanted(selector):
                users.setdefault(selector, []).append(source)
    for selector in sorted(users):
        answer = get(base, "/api/v1/series", **{"match[]": selector})
        where = ", ".join(sorted(set(users[selector])))[:160]
        if answer.get("status") == "success" and answer.get("data"):
            print(f"ok: {selector} exists ({len(answer['data'])} series)")
        else:
            print(f"FAILED: {selector} is not exported (used by {where}) {answer.get('error', '')}")

    # Every dashboard query parses and runs.
    broken = []
    for title, expr in panels:
        answer = get(base, "/api/v1/query", query=grafana(expr))
        if answer.get("status") != "success":
            broken.append(f"{title}: {answer.get('error')}")
    if broken:
        for line in broken:
            print(f"FAILED: dashboard query: {line}")
    else:
        print(f"ok: all {len(panels)} dashboard queries run")


if __name__ == "__main__":
    main()
