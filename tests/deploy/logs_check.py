#!/usr/bin/env python3
"""Checks for tests/deploy/logs_test.sh: the binaries' log lines, and deploy/logging.

  logs_check.py lines [options] SERVICE=FILE ...
      Every non-empty line of every FILE is one ECS JSON object of that service.name:
      @timestamp (RFC 3339, fraction, Z or offset, within --since/--until), log.level,
      message or the access-log fields, no key twice, values of the types Elasticsearch
      will map them to, no dotted key clashing with another (log vs log.level), and no
      forbidden string (--forbid FILE: one per line; tokens, secrets, passwords) nor
      anything that looks like a JWT. Then the lines go through what Fluent Bit does with
      them (deploy/logging/parsers.conf's Merge_Parser, the modify filter, the es
      output's Time_Key) and the resulting documents must fit one Elasticsearch index.
      --expect-message SERVICE:TEXT, --expect-status CODE[|CODE], --expect-access
      K=V,K=V: lines that must be there (the traffic really reached those paths).
  logs_check.py selftest
      The checker rejects crafted bad lines (so the test cannot pass vacuously).
  logs_check.py deploy DIR NAME=RENDERED.yaml ...
      deploy/logging (DIR) as rendered by kustomize: the objects, the ConfigMap holding
      DIR's exact fluent-bit.conf and parsers.conf mounted where the DaemonSet's
      Fluent Bit reads them, probes on the configured HTTP server, env for every
      ${VAR}, writable mounts for what it writes, RBAC, security context.

Prints "PASS: ..." / "FAIL: ..." lines; exit status 1 when any FAIL.
"""
import ipaddress
import json
import re
import sys
from datetime import datetime, timedelta, timezone

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}(Z|[+-]\d{2}:\d{2})$")
LEVELS = {"debug", "info", "warning", "error"}  # spdlog's names for the four levels
ECS_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
ACCESS_DATASET = "balance_gateway.access"
ACCESS_DATASETS = {"balance-gateway": ACCESS_DATASET, "balanced": "balanced.access"}  # balanced: --access-log on
ACCESS_FIELDS = {  # field: type
    "http.request.method": str, "url.path": str, "http.response.status_code": int,
    "event.duration": int, "client.ip": str, "http.request.id": str, "trace.id": str,
}
# ECS 8 field sets: objects in ECS. A log line whose top-level key is one of them with a
# plain value ("error": "..." where ECS has error.message) cannot be indexed where that
# name is mapped as ECS maps it (ECS index templates, other ECS data in the index):
# Elasticsearch refuses the document (object mapping, concrete value).
ECS_FIELD_SETS = {
    "agent", "as", "client", "cloud", "code_signature", "container", "data_stream", "destination", "device",
    "dll", "dns", "ecs", "elf", "email", "error", "event", "faas", "file", "geo", "group", "hash", "host",
    "http", "interface", "labels", "log", "macho", "network", "observer", "orchestrator", "organization", "os",
    "package", "pe", "process", "registry", "related", "risk", "rule", "server", "service", "source", "span",
    "threat", "tls", "trace", "transaction", "url", "user", "user_agent", "vlan", "volume", "vulnerability", "x509",
}
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
BEARER_JWT = re.compile(r"Bearer\s+[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.", re.IGNORECASE)

results = {"passed": 0, "failed": 0}


def report(ok, what, problems=()):
    if ok:
        results["passed"] += 1
        print(f"PASS: {what}")
    else:
        results["failed"] += 1
        shown = list(problems)[:12]
        more = len(problems) - len(shown)
        print(f"FAIL: {what}" + "".join(f"\n    {p}" for p in shown) + (f"\n    ... {more} more" if more > 0 else ""))


class DuplicateKey(ValueError):
    pass


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"key {key!r} twice")
        seen[key] = value
    return seen


def rfc3339(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_line(line, service, forbidden, since=None, until=None):
    """The problems of one log line (empty when it is a good ECS line of `service`)."""
    problems = []
    for secret in forbidden:
        if secret and secret in line:
            problems.append(f"holds a forbidden string ({secret[:6]}...)")
    if BEARER_JWT.search(line):
        problems.append("holds 'Bearer <JWT>'")
    elif JWT_LIKE.search(line):
        problems.append("holds something shaped like a JWT")
    try:
        record = json.loads(line, object_pairs_hook=no_duplicates)
    except DuplicateKey as e:
        return problems + [f"JSON with a {e}"]
    except ValueError as e:
        return problems + [f"not JSON ({e})"]
    if not isinstance(record, dict):
        return problems + ["JSON but not an object"]
    # One form throughout: flat dotted ECS keys, values strings or integers (the code
    # writes every field as a dotted key; a nested object would be the other form).
    for key, value in record.items():
        if isinstance(value, (dict, list)):
            problems.append(f"{key}: nested {type(value).__name__} (the lines use flat dotted keys)")
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            problems.append(f"{key}: {value!r} is neither a string nor an integer")
    keys = set(record)
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in keys:
                problems.append(f"{'.'.join(parts[:i])!r} and {key!r}: a value and an object at once in Elasticsearch")
    stamp = record.get("@timestamp")
    if not isinstance(stamp, str) or not RFC3339.match(stamp):
        problems.append(f"@timestamp {stamp!r} is not RFC 3339 with a fraction and Z or an offset")
    else:
        try:
            moment = rfc3339(stamp)
            if since is not None and not (since - timedelta(seconds=5) <= moment <= until + timedelta(seconds=5)):
                problems.append(f"@timestamp {stamp} is not the time of the run (UTC {since:%H:%M:%S}-{until:%H:%M:%S})")
        except ValueError as e:
            problems.append(f"@timestamp {stamp!r}: {e}")
    if record.get("log.level") not in LEVELS:
        problems.append(f"log.level {record.get('log.level')!r} not one of {sorted(LEVELS)}")
    # The ecs-logging spec requires ecs.version beside @timestamp and log.level.
    if not isinstance(record.get("ecs.version"), str) or not ECS_VERSION.match(record["ecs.version"]):
        problems.append(f"ecs.version {record.get('ecs.version')!r} is not an ECS version (the ecs-logging spec requires it)")
    if record.get("service.name") != service:
        problems.append(f"service.name {record.get('service.name')!r}, expected {service!r}")
    if record.get("event.dataset") in ACCESS_DATASETS.values():
        if record.get("event.dataset") != ACCESS_DATASETS[service]:
            problems.append(f"an access-log line of {record.get('event.dataset')} from {service}")
        for field, kind in ACCESS_FIELDS.items():
            value = record.get(field)
            if not isinstance(value, kind) or isinstance(value, bool):
                problems.append(f"access line without {field} ({kind.__name__})")
        if isinstance(record.get("http.response.status_code"), int) and not 100 <= record["http.response.status_code"] <= 599:
            problems.append(f"http.response.status_code {record['http.response.status_code']}")
        if isinstance(record.get("event.duration"), int) and record["event.duration"] < 0:
            problems.append("event.duration < 0")
        if not re.fullmatch(r"[0-9a-f]{32}", str(record.get("trace.id", ""))) or record.get("trace.id") == "0" * 32:
            problems.append(f"trace.id {record.get('trace.id')!r} is not a W3C trace id")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", str(record.get("http.request.id", ""))):
            problems.append(f"http.request.id {record.get('http.request.id')!r}")
        try:
            ipaddress.ip_address(str(record.get("client.ip")))
        except ValueError:
            problems.append(f"client.ip {record.get('client.ip')!r} is not an address")
        if "?" in str(record.get("url.path", "")):
            problems.append("url.path holds a query string")
    elif not isinstance(record.get("message"), str) or not record.get("message"):
        problems.append("no message (and not an access-log line)")
    return problems


def ecs_clashes(record):
    """Top-level keys naming an ECS field set but holding a plain value."""
    return sorted(k for k in record if k in ECS_FIELD_SETS)


# ---- Fluent Bit's side, read from deploy/logging.

def classic_sections(text):
    """Fluent Bit classic config: [(SECTION, [(key, value), ...]), ...]."""
    sections = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].upper(), []))
        elif sections:
            key, _, value = line.partition(" ")
            sections[-1][1].append((key, value.strip()))
    return sections


def prop(pairs, key, default=None):
    values = [v for k, v in pairs if k.lower() == key.lower()]
    return values[-1] if values else default


def props(pairs, key):
    return [v for k, v in pairs if k.lower() == key.lower()]


def python_time_format(fluent_format):
    return fluent_format.replace("%L", "%f")


def fluent_bit_documents(records, conf_text, parsers_text):
    """What Fluent Bit makes of ECS records with deploy/logging's config: a list of
    (document as key/value pairs, problem or None)."""
    conf = classic_sections(conf_text)
    parsers = {prop(p, "Name"): p for s, p in classic_sections(parsers_text) if s == "PARSER"}
    kube = next(p for s, p in conf if s == "FILTER" and prop(p, "Name") == "kubernetes")
    modify = [p for s, p in conf if s == "FILTER" and prop(p, "Name") == "modify"]
    es = next(p for s, p in conf if s == "OUTPUT" and prop(p, "Name") == "es")
    parser = parsers.get(prop(kube, "Merge_Parser"))
    out = []
    for record in records:
        problem = None
        body = dict(record)  # the kubernetes filter merges the line's keys at the top level
        if prop(kube, "Merge_Log_Key"):
            body = {prop(kube, "Merge_Log_Key"): body}
        if parser is not None and prop(parser, "Time_Key"):
            key = prop(parser, "Time_Key")
            if key in body:
                try:
                    datetime.strptime(body[key], python_time_format(prop(parser, "Time_Format", "")))
                    if prop(parser, "Time_Keep", "Off").lower() in ("off", "false"):
                        del body[key]
                except (TypeError, ValueError):
                    problem = f"parser {prop(parser, 'Name')}: {body[key]!r} does not match Time_Format {prop(parser, 'Time_Format')} (the key stays)"
        pairs = [("stream", "stdout"), ("_p", "F"), ("time", "2026-01-01T00:00:00.000000000Z")]
        if prop(kube, "Keep_Log", "On").lower() in ("on", "true"):
            pairs.append(("log", json.dumps(record)))
        pairs += list(body.items())
        pairs.append(("kubernetes", {"pod_name": "balanced-0", "namespace_name": "balanced",
                                     "labels": {"app.kubernetes.io/name": "balanced"}}))
        for m in modify:
            for key in props(m, "Remove"):
                pairs = [(k, v) for k, v in pairs if k != key]
            for rename in props(m, "Rename"):
                old, new = rename.split()
                if any(k == old for k, _ in pairs) and not any(k == new for k, _ in pairs):
                    pairs = [(new if k == old else k, v) for k, v in pairs]
        pairs.insert(0, (prop(es, "Time_Key", "@timestamp"), "2026-01-01T00:00:00.000Z"))
        out.append((pairs, problem))
    return out


def es_paths(pairs, prefix=""):
    """Elasticsearch's view of a document: dotted names are object paths."""
    for key, value in pairs:
        path = prefix + key
        if isinstance(value, dict):
            yield from es_paths(value.items(), path + ".")
        else:
            yield path, ("long" if isinstance(value, int) else "keyword")


def check_documents(docs, replace_dots):
    problems = []
    leaf, objects = {}, set()
    for pairs, problem in docs:
        if problem:
            problems.append(problem)
        names = [k for k, _ in pairs]
        for name in set(names):
            if names.count(name) > 1:
                problems.append(f"document with {name!r} twice (Elasticsearch: Duplicate field)")
        for path, kind in es_paths(pairs):
            if replace_dots:
                path = path.replace(".", "_")
            parts = path.split(".")
            for i in range(1, len(parts)):
                objects.add(".".join(parts[:i]))
            if leaf.setdefault(path, kind) != kind:
                problems.append(f"{path}: {leaf[path]} in one document, {kind} in another")
    for path in sorted(objects & set(leaf)):
        problems.append(f"{path}: a value in some document, an object in another (mapping conflict)")
    return sorted(set(problems)), leaf


# ---- Subcommands.

def cmd_lines(argv):
    forbidden, expect_messages, expect_statuses, expect_access, files = [], [], [], [], []
    since = until = None
    parsers = conf = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--forbid":
            forbidden += [s for s in open(argv[i + 1]).read().splitlines() if s]
            i += 2
        elif arg in ("--since", "--until"):
            moment = datetime.fromtimestamp(float(argv[i + 1]), timezone.utc)
            since, until = (moment, until) if arg == "--since" else (since, moment)
            i += 2
        elif arg == "--expect-message":
            expect_messages.append(argv[i + 1].split(":", 1))
            i += 2
        elif arg == "--expect-status":
            expect_statuses.append({int(c) for c in argv[i + 1].split("|")})
            i += 2
        elif arg == "--expect-access":
            expect_access.append(dict(kv.split("=", 1) for kv in argv[i + 1].split(",")))
            i += 2
        elif arg == "--fluent-bit":
            conf, parsers = open(argv[i + 1]).read(), open(argv[i + 2]).read()
            i += 3
        else:
            service, _, path = arg.partition("=")
            files.append((service, path))
            i += 1
    records = {"balanced": [], "balance-gateway": []}
    for service, path in files:
        problems, count = [], 0
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8").rstrip("\n")
                except UnicodeDecodeError:
                    problems.append(f"{path}:{number}: not UTF-8: {raw[:120]!r}")
                    continue
                if not line.strip():
                    continue
                count += 1
                found = check_line(line, service, forbidden, since, until)
                if found:
                    problems.append(f"{path.rsplit('/', 1)[-1]}:{number}: {'; '.join(found)}: {line[:200]}")
                else:
                    records.setdefault(service, []).append(json.loads(line))
        report(not problems, f"{path.rsplit('/', 1)[-1]}: all {count} lines are ECS JSON of service.name {service}, no token or secret", problems)

    clashes, where = {}, {}
    for service, path in files:
        for number, raw in enumerate(open(path, "rb"), 1):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            for key in ecs_clashes(record) if isinstance(record, dict) else []:
                clashes.setdefault((service, key, record.get("message")), 0)
                clashes[(service, key, record.get("message"))] += 1
                where.setdefault((service, key, record.get("message")), f"{path.rsplit('/', 1)[-1]}:{number}: {raw.decode(errors='replace').strip()[:240]}")
    report(not clashes, "no top-level key is an ECS field set holding a plain value (error, source, tls, ... are "
           "objects in ECS: once mapped so, by ECS templates or ECS data in the index, Elasticsearch refuses the document)",
           [f"{service} {key!r} in {message!r} ({count} lines), e.g. {where[(service, key, message)]}"
            for (service, key, message), count in sorted(clashes.items(), key=lambda item: str(item[0]))])

    gateway, balanced = records["balance-gateway"], records["balanced"]
    access = [r for r in gateway if r.get("event.dataset") == ACCESS_DATASET]
    levels = sorted({r["log.level"] for r in gateway + balanced})
    report(len(balanced) >= 5 and len(gateway) >= 5 and len(access) >= 10,
           f"enough lines to mean something: balanced {len(balanced)}, gateway {len(gateway)} "
           f"({len(access)} access-log lines); levels used: {', '.join(levels)}",
           [f"balanced {len(balanced)} (want 5), gateway {len(gateway)} (want 5), access {len(access)} (want 10)"])
    missing = []
    for service, text in expect_messages:
        if not any(r.get("message") == text for r in records.get(service, [])):
            missing.append(f"{service}: no line with message {text!r}")
    report(not missing, f"the {len(expect_messages)} expected events are logged (serving, reloading, JWKS, upstream out/back, draining, stopped, ...)", missing)
    statuses = sorted({r.get("http.response.status_code") for r in access})
    missing = ["|".join(map(str, sorted(s))) for s in expect_statuses if not s & set(statuses)]
    report(not missing, f"access log holds every status the traffic made: {' '.join(map(str, statuses))}",
           [f"no access line with status {m}" for m in missing])
    missing = []
    for want in expect_access:
        if not any(all(str(r.get(k)) == v for k, v in want.items()) for r in access):
            missing.append(f"no access line with {want}")
    report(not missing, f"access lines carry what was sent: X-Request-Id, traceparent's trace id, the token's sub ({len(expect_access)} lines)", missing)

    # balanced's own access lines (--access-log on) carry the request and trace ids the
    # gateway sent it: every request the gateway forwarded and got an answer to is found.
    ledger_access = [r for r in balanced if r.get("event.dataset") == ACCESS_DATASETS["balanced"]]
    ledger_ids = {(r.get("http.request.id"), r.get("trace.id")) for r in ledger_access}
    forwarded = [r for r in access if r.get("url.path", "").startswith("/accounts") and r.get("http.response.status_code") in (200, 201)]
    unmatched = [r for r in forwarded if (r.get("http.request.id"), r.get("trace.id")) not in ledger_ids]
    report(len(ledger_access) >= 5 and forwarded and not unmatched,
           f"balanced's access lines ({len(ledger_access)}) carry the gateway's http.request.id and trace.id: "
           f"all {len(forwarded)} forwarded 2xx requests matched",
           [f"balanced access lines: {len(ledger_access)} (want 5), forwarded 2xx: {len(forwarded)}"] +
           [f"no balanced line for {r.get('http.request.method')} {r.get('url.path')} id {r.get('http.request.id')}" for r in unmatched[:5]])

    if conf is not None:
        all_records = gateway + balanced
        docs = fluent_bit_documents(all_records, conf, parsers)
        es = next(p for s, p in classic_sections(conf) if s == "OUTPUT" and prop(p, "Name") == "es")
        problems, mapping = check_documents(docs, prop(es, "Replace_Dots", "Off").lower() in ("on", "true"))
        ecs = [f for f in ("@timestamp", "log.level", "message", "service.name", "http.request.id", "trace.id",
                           "http.response.status_code", "event.duration", "client.ip") if f not in mapping]
        problems += [f"{f} is not a top-level ECS field of the documents" for f in ecs]
        report(not problems, f"as Fluent Bit ships them (Merge_Parser, modify, es Time_Key), the {len(docs)} documents fit one "
               f"Elasticsearch index: one @timestamp each, {len(mapping)} fields, no mapping conflict, ECS names at the top", problems)


def cmd_selftest(_argv):
    good = ('{"@timestamp":"2026-12-02T18:07:10.502Z","log.level":"info","ecs.version":"8.11.0","service.name":"balanced",'
            '"message":"balanced serving","listen":"127.0.0.1:8080"}')
    access = ('{"@timestamp":"2026-12-02T18:07:10.502Z","log.level":"info","ecs.version":"8.11.0","service.name":"balance-gateway",'
              '"event.dataset":"balance_gateway.access","http.request.method":"GET","url.path":"/accounts/alice/balance",'
              '"http.response.status_code":200,"event.duration":1136332,"client.ip":"127.0.0.1","user.id":"alice",'
              '"http.request.id":"ab78d6e3","trace.id":"0d01e347a60b5f7def9966617deb8fa8"}')
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    problems = []
    if check_line(good, "balanced", []):
        problems.append(f"a good line is rejected: {check_line(good, 'balanced', [])}")
    if check_line(access, "balance-gateway", []):
        problems.append(f"a good access line is rejected: {check_line(access, 'balance-gateway', [])}")
    bad = {
        "a plain-text line": ("balanced", "balanced: listening on 127.0.0.1:8080"),
        "a line missing service.name": ("balanced", good.replace('"service.name":"balanced",', "")),
        "another service's line": ("balance-gateway", good),
        "a line without @timestamp": ("balanced", good.replace('"@timestamp":"2026-12-02T18:07:10.502Z",', "")),
        "a @timestamp without fraction": ("balanced", good.replace("10.502Z", "10Z")),
        "a @timestamp without zone": ("balanced", good.replace("10.502Z", "10.502")),
        "an unknown log.level": ("balanced", good.replace('"info"', '"verbose"')),
        "a line without ecs.version": ("balanced", good.replace('"ecs.version":"8.11.0",', "")),
        "a line without message": ("balanced", good.replace('"message":"balanced serving",', "")),
        "an access line without trace.id": ("balance-gateway", access.replace(',"trace.id":"0d01e347a60b5f7def9966617deb8fa8"', "")),
        "an access line with a string status": ("balance-gateway", access.replace(":200,", ':"200",')),
        "a key twice": ("balanced", good[:-1] + ',"message":"again"}'),
        "a nested object": ("balanced", good[:-1] + ',"http":{"request":{"id":"x"}}}'),
        "log beside log.level": ("balanced", good[:-1] + ',"log":"x"}'),
        "a JSON array": ("balanced", "[" + good + "]"),
        "a token": ("balance-gateway", access.replace("ab78d6e3", token)),
        "Bearer and a JWT": ("balanced", good.replace("balanced serving", "Authorization: Bearer abc.def.ghi")),
        "a forbidden secret": ("balanced", good.replace("127.0.0.1:8080", "hunter2-secret")),
    }
    now = datetime.now(timezone.utc)
    local = good.replace("2026-12-02T18:07:10.502Z", (now + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    if not check_line(local, "balanced", [], now - timedelta(seconds=1), now + timedelta(seconds=1)):
        problems.append("local time written as Z is accepted")
    if ecs_clashes(json.loads(good)) or ecs_clashes(json.loads(access)):
        problems.append("good lines clash with ECS field sets")
    if ecs_clashes(json.loads(good[:-1] + ',"error":"disk full"}')) != ["error"]:
        problems.append('"error": "disk full" is not seen as a clash with ECS error.*')
    for what, (service, line) in bad.items():
        if not check_line(line, service, ["hunter2-secret"]):
            problems.append(f"{what} is accepted: {line}")
    # The Fluent Bit emulation must see what Elasticsearch would refuse.
    conf = "[FILTER]\n    Name kubernetes\n    Merge_Log On\n    Keep_Log On\n[OUTPUT]\n    Name es\n"
    docs = fluent_bit_documents([json.loads(good)], conf, "")
    found, _ = check_documents(docs, False)
    if not any("Duplicate" in p for p in found) or not any("mapping conflict" in p for p in found):
        problems.append(f"Keep_Log On and no Merge_Parser are accepted: {found}")
    report(not problems, f"self-check: the checker passes good lines and rejects {len(bad) + 2} crafted bad ones "
           "(plain text, no service.name, no @timestamp, local time as Z, duplicate key, token, an ECS clash, ...), and what Elasticsearch would refuse", problems)


def cmd_deploy(argv):
    import yaml  # python3-yaml
    directory, renders = argv[0], argv[1:]
    files = {name: open(f"{directory}/{name}", encoding="utf-8").read() for name in ("fluent-bit.conf", "parsers.conf")}
    kustomization = yaml.safe_load(open(f"{directory}/kustomization.yaml"))
    allowed = {"apiVersion", "kind", "resources", "namespace", "commonLabels", "configMapGenerator"}
    extra = set(kustomization) - allowed
    report(not extra, "kustomization.yaml uses only resources, namespace, commonLabels, configMapGenerator",
           [f"also uses {sorted(extra)}"])
    shapes = {}
    for render in renders:
        name, _, path = render.partition("=")
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        shapes[name] = check_rendered(name, docs, files)
    if len(shapes) > 1:
        first, *others = shapes.items()
        differ = [f"{n} differs from {first[0]}" for n, s in others if s != first[1]]
        report(not differ, f"{' and '.join(shapes)} render the same objects (but for the ConfigMap's hash)", differ)


def check_rendered(name, docs, files):
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    want = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"}
    if set(by_kind) != want or any(len(v) != 1 for v in by_kind.values()):
        return report(False, f"{name}: the objects", [f"kinds {sorted((k, len(v)) for k, v in by_kind.items())}, want one each of {sorted(want)}"])
    ns, sa, role, binding, cm, ds = (by_kind[k][0] for k in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"))
    # Namespace, labels.
    if ns["metadata"]["name"] != "logging":
        problems.append(f"namespace object {ns['metadata']['name']}")
    for d in (sa, cm, ds):
        if d["metadata"].get("namespace") != "logging":
            problems.append(f"{d['kind']} in namespace {d['metadata'].get('namespace')}")
    for d in docs:
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") != "fluent-bit":
            problems.append(f"{d['kind']} without the common labels")
    spec = ds["spec"]["template"]["spec"]
    selector = ds["spec"]["selector"]["matchLabels"]
    template_labels = ds["spec"]["template"]["metadata"].get("labels", {})
    if any(template_labels.get(k) != v for k, v in selector.items()):
        problems.append(f"selector {selector} does not select the template's labels {template_labels}")
    # RBAC: read pods and namespaces, nothing else; bound to the DaemonSet's account.
    rules = role.get("rules", [])
    granted = {(r, v) for rule in rules for r in rule.get("resources", []) for v in rule.get("verbs", [])}
    if granted != {(r, v) for r in ("pods", "namespaces") for v in ("get", "list", "watch")} or any(rule.get("apiGroups") != [""] for rule in rules):
        problems.append(f"ClusterRole grants {sorted(granted)}")
    subjects = binding.get("subjects", [])
    if binding["roleRef"]["name"] != role["metadata"]["name"] or subjects != [
            {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "logging"}]:
        problems.append(f"ClusterRoleBinding {binding['roleRef']} {subjects}")
    if spec.get("serviceAccountName") != sa["metadata"]["name"]:
        problems.append(f"DaemonSet runs as {spec.get('serviceAccountName')}, not {sa['metadata']['name']}")
    if not any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t for t in spec.get("tolerations", [])):
        problems.append("no toleration of every taint (operator: Exists)")
    report(not problems, f"{name}: Namespace, ServiceAccount, ClusterRole (get/list/watch pods, namespaces) bound to it, "
           "DaemonSet in logging on every node", problems)

    # The ConfigMap is the directory's two files, byte for byte, and it is what Fluent Bit reads.
    problems = []
    containers = spec["containers"]
    if len(containers) != 1:
        problems.append(f"{len(containers)} containers, want Fluent Bit alone")
    c = containers[0]
    if not re.fullmatch(r"fluent-bit-config-[a-z0-9]{6,}", cm["metadata"]["name"]):
        problems.append(f"ConfigMap {cm['metadata']['name']} is not the generated, hash-named one")
    if set(cm.get("data", {})) != set(files):
        problems.append(f"ConfigMap data keys {sorted(cm.get('data', {}))}")
    for file, text in files.items():
        if cm.get("data", {}).get(file) != text:
            problems.append(f"ConfigMap {file} is not deploy/logging/{file}")
    volumes = [v for v in spec.get("volumes", []) if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
    mounts = [m for m in c.get("volumeMounts", []) if volumes and m["name"] == volumes[0]["name"]]
    if len(volumes) != 1 or len(mounts) != 1:
        problems.append("the ConfigMap is not mounted (exactly once) into the container")
        mount = "/nonexistent"
    else:
        mount = mounts[0]["mountPath"].rstrip("/")
        if volumes[0]["configMap"].get("items"):
            problems.append("the volume picks items: the files would not be at their names")
    command = " ".join(c.get("command", []) + c.get("args", []))
    if not re.search(rf"(-c|--config)[ =]{re.escape(mount)}/fluent-bit\.conf\b", command):
        problems.append(f"Fluent Bit is not started on {mount}/fluent-bit.conf: {command!r}")
    conf = classic_sections(files["fluent-bit.conf"])
    service = next((p for s, p in conf if s == "SERVICE"), [])
    if prop(service, "Parsers_File") != f"{mount}/parsers.conf":
        problems.append(f"Parsers_File {prop(service, 'Parsers_File')}, the mounted one is {mount}/parsers.conf")
    report(not problems, f"{name}: the DaemonSet mounts the generated ConfigMap ({cm['metadata']['name']}) holding "
           f"deploy/logging's fluent-bit.conf and parsers.conf byte for byte at {mount}, and runs Fluent Bit on them", problems)

    # The pod around Fluent Bit.
    problems = []
    if not re.fullmatch(r"cr\.fluentbit\.io/fluent/fluent-bit:\d+\.\d+\.\d+", c.get("image", "")):
        problems.append(f"image {c.get('image')} is not a pinned cr.fluentbit.io/fluent/fluent-bit:X.Y.Z")
    sc = c.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add")
            and not sc.get("privileged") and sc.get("runAsUser") == 0):
        problems.append(f"securityContext {sc}")
    res = c.get("resources", {})
    if not all(res.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")):
        problems.append(f"resources {res}")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    http_port = int(prop(service, "HTTP_Port", "2020"))
    if prop(service, "HTTP_Server", "Off").lower() not in ("on", "true") or prop(service, "Health_Check", "Off").lower() not in ("on", "true"):
        problems.append("HTTP_Server or Health_Check not On")
    paths = []
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        if port != http_port:
            problems.append(f"{probe} on port {get.get('port')}, Fluent Bit's HTTP_Port is {http_port}")
        paths.append(get.get("path"))
    if "/api/v1/health" not in paths:
        problems.append(f"no probe on /api/v1/health ({paths})")
    env = {e["name"]: e for e in c.get("env", [])}
    for var in sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", files["fluent-bit.conf"]))):
        if var not in env:
            problems.append(f"${{{var}}} is used in fluent-bit.conf but not set in the container")
    for var, e in env.items():
        if re.search(r"PASS|SECRET|TOKEN|USER", var) and "secretKeyRef" not in e.get("valueFrom", {}):
            problems.append(f"{var} is not from a Secret (secretKeyRef)")
    # Every path Fluent Bit writes is on a writable mount (the root filesystem is read-only),
    # every path it reads is mounted.
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}

    def mounted(path, writable):
        best = max((m for m in mounts if path == m or path.startswith(m + "/")), key=len, default=None)
        return best is not None and (not writable or not mounts[best].get("readOnly"))
    tail = next((p for s, p in conf if s == "INPUT" and prop(p, "Name") == "tail"), [])
    es = next((p for s, p in conf if s == "OUTPUT" and prop(p, "Name") == "es"), [])
    for path in [prop(service, "storage.path"), prop(tail, "DB")]:
        if not path or not mounted(path.rstrip("/"), True):
            problems.append(f"{path} is written but not on a writable mount")
    for path in [prop(es, "tls.ca_file")] + [p.strip() for p in (prop(tail, "Path") or "").split(",")]:
        if not path or not mounted(path.rsplit("/", 1)[0], False):
            problems.append(f"{path} is read but its directory is not mounted")
    if not mounts.get("/var/log", {}).get("readOnly"):
        problems.append("/var/log not mounted read-only")
    report(not problems, f"{name}: pinned image {c.get('image')}, read-only root, no capability, resources, probes on "
           f":{http_port}, env for every ${{VAR}} (credentials from a Secret), writable mounts for DB and buffer", problems)

    # What fluent-bit.conf does.
    problems = []
    filters = [p for s, p in conf if s == "FILTER"]
    kube = next((p for p in filters if prop(p, "Name") == "kubernetes"), None)
    parsers = {prop(p, "Name"): p for s, p in classic_sections(files["parsers.conf"]) if s == "PARSER"}
    path = prop(tail, "Path") or ""
    if not ("/var/log/containers/*balanced*.log" in path and "/var/log/containers/*balance-gateway*.log" in path):
        problems.append(f"tail Path {path!r}")
    ml = [p.strip() for p in (prop(tail, "multiline.parser") or "").split(",")]
    if ml[:1] != ["cri"] or "docker" not in ml:
        problems.append(f"multiline.parser {ml}: want cri, then docker")
    tag = prop(tail, "Tag", "")
    if kube is None:
        problems.append("no kubernetes filter")
    else:
        if prop(kube, "Merge_Log", "Off").lower() not in ("on", "true") or prop(kube, "Keep_Log", "On").lower() not in ("off", "false"):
            problems.append("kubernetes filter: want Merge_Log On and Keep_Log Off")
        if prop(kube, "Merge_Log_Key"):
            problems.append("kubernetes filter: Merge_Log_Key set, the ECS fields would not be at the top level")
        parser = parsers.get(prop(kube, "Merge_Parser"))
        if parser is None:
            problems.append(f"Merge_Parser {prop(kube, 'Merge_Parser')} is not in parsers.conf")
        elif (prop(parser, "Format") != "json" or prop(parser, "Time_Key") != prop(es, "Time_Key", "@timestamp")
              or prop(parser, "Time_Keep", "Off").lower() not in ("off", "false")):
            problems.append("Merge_Parser: want Format json, Time_Key the es output's Time_Key, Time_Keep Off")
        if tag.replace("*", "") + "var.log.containers." != prop(kube, "Kube_Tag_Prefix", "kube.var.log.containers."):
            problems.append(f"Kube_Tag_Prefix {prop(kube, 'Kube_Tag_Prefix')} does not match the tail Tag {tag}")
    want = {"tls": "on", "tls.verify": "on", "Suppress_Type_Name": "on", "Logstash_Format": "on",
            "Logstash_Prefix": "balanced", "Replace_Dots": "off"}
    for key, value in want.items():
        if (prop(es, key) or "").lower() != value:
            problems.append(f"es output: {key} {prop(es, key)!r}, want {value!r}")
    for s, p in conf:
        if s in ("FILTER", "OUTPUT") and not re.fullmatch(re.escape(prop(p, "Match", "")).replace(r"\*", ".*"), tag.replace("*", "x")):
            problems.append(f"{prop(p, 'Name')} does not Match the tail Tag {tag}")
    report(not problems, f"{name}: fluent-bit.conf tails both binaries' container logs (cri, docker), merges the ECS fields "
           "at the top level (Merge_Log On, Keep_Log Off, no Merge_Log_Key), es output with TLS, Logstash_Prefix balanced, "
           "Replace_Dots Off", problems)
    shape = json.loads(json.dumps(docs))
    for d in shape:
        if d["kind"] == "ConfigMap":
            d["metadata"]["name"] = "fluent-bit-config-HASH"
        if d["kind"] == "DaemonSet":
            for v in d["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in v:
                    v["configMap"]["name"] = "fluent-bit-config-HASH"
    return sorted(json.dumps(d, sort_keys=True) for d in shape)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("lines", "selftest", "deploy"):
        print(__doc__)
        return 2
    {"lines": cmd_lines, "selftest": cmd_selftest, "deploy": cmd_deploy}[sys.argv[1]](sys.argv[2:])
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
