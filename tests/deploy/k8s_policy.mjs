// Offline checks of rendered Kubernetes manifests (the output of `kubectl kustomize`), for
// tests/deploy/k8s_test.sh. Prints one `PASS <render>: <check>` or `FAIL <render>: <check>`
// line per check, each FAIL followed by its problems indented; exits 0 when it ran (the
// shell script counts the lines), 2 when it could not run at all.
//
//   node k8s_policy.mjs --tools DIR --source ROOT check NAME FILE PROFILE
//   node k8s_policy.mjs --tools DIR --source ROOT self-test DEV_FILE PRODUCTION_FILE
//   node k8s_policy.mjs --tools DIR --source ROOT kustomizations FILE...
//
// DIR holds node_modules with kubernetes-models, @kubernetes-models/prometheus-operator and
// yaml; ROOT is the repository (the flags' environment variables are read from its
// sources). PROFILE: base | dev | production (the whole system), job (a Job of our image,
// e.g. overlays/production/migrate), foreign (someone else's manifests, deploy/logging:
// the schemas, and no secret value in env, args or ConfigMaps; env from a Secret is noted).
//
// The checks:
//   schema     every object against the Kubernetes (and Prometheus Operator) JSON schemas
//              of kubernetes-models, plus no field those types do not declare (the schemas
//              alone let a misspelt field through, which a real API server refuses)
//   probes     every container of a long-running workload has startup, liveness and
//              readiness probes on one of its own ports; ours on the admin port, /healthz
//              and /readyz (initContainers and Jobs are exempt)
//   resources  every container and initContainer (Jobs too) requests CPU and memory and
//              has a memory limit
//   security   every container and initContainer runs as non-root (ours as 10001:10001),
//              read-only root, no privilege escalation, capabilities drop ALL, seccomp
//              RuntimeDefault; no host namespaces
//   secrets    no env value, argument, command or ConfigMap entry that looks like a secret
//              (a password-named variable with a value, user:password@ in a URL, a PEM, a
//              JWT); no env from secretKeyRef and no envFrom a Secret: secrets are files
//   flags      every BALANCED_* / BALANCE_GATEWAY_* variable given to our binaries is one
//              their flags read (apps/*/config.cc, apps/balancectl/main.cc, src/flags/token_checks.cc,
//              src/flags/redis_flags.cc); the listeners match the container ports; the
//              files named are mounted (secret files from Secret volumes, no subPath; CA
//              files, a MySQL URL's tls-ca included, unless in the image's /etc/ssl/certs);
//              the gateway's upstream is a headless Service of balanced's pods (clusterIP
//              None, publishNotReadyAddresses: each pod a replica of its own, DESIGN.md
//              section 12), and --upstream-resolve-s is within its range (1-3600)
//   network    NetworkPolicies: only the gateway's pods reach balanced's API port; the
//              admin ports only from a named namespace and pod selector (Prometheus);
//              both programs isolated both ways; egress only to the ports they use
//   services   every Service selecting balanced is ClusterIP; a headless one (clusterIP
//              None) only as the gateway's upstream and with publishNotReadyAddresses (the
//              gateway's health checks decide), which a ClusterIP one must not have (kube-
//              proxy would send to pods that are not ready); the gateway's is a
//              LoadBalancer on 443 to its TLS port
//   autoscaling  an autoscaling/v2 HPA per Deployment with CPU and the documented Pods
//              metric (requests per second), and no `replicas:` in the Deployment
//   disruption   a PodDisruptionBudget per Deployment
//   topology   spread over zones and nodes (production: zones required)
//   drain      balanced: BALANCED_DRAIN_DELAY_MS (--drain-delay-ms) or a preStop `sleep`,
//              not both; the gateway: a preStop `sleep` (the image has no shell for exec);
//              and a grace period that covers that delay plus the program's own drain
//   monitoring the PodMonitors find the pods and their `admin` port; container names

import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

// ---------------------------------------------------------------------------------------
// Arguments and modules

function usage(message) {
  console.error(`k8s_policy: ${message}`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const options = {};
while (argv.length && argv[0].startsWith("--")) {
  const flag = argv.shift();
  if (!argv.length) usage(`${flag} needs a value`);
  options[flag.slice(2)] = argv.shift();
}
if (!options.tools || !options.source) usage("--tools DIR and --source ROOT are required");
const nodeModules = path.join(path.resolve(options.tools), "node_modules");
const require = createRequire(path.join(nodeModules, "noop.js"));
let YAML;
try {
  YAML = require("yaml");
} catch (error) {
  usage(`cannot load yaml from ${nodeModules}: ${error.message}`);
}

const modelRoots = {
  core: path.join(nodeModules, "kubernetes-models"),
  monitoring: path.join(nodeModules, "@kubernetes-models", "prometheus-operator"),
};
for (const root of Object.values(modelRoots)) {
  if (!existsSync(path.join(root, "package.json"))) usage(`${root} is missing`);
}

function modelDir(apiVersion) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) return path.join(modelRoots.monitoring, apiVersion);
  return path.join(modelRoots.core, apiVersion);
}

const classCache = new Map();
async function modelClass(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!classCache.has(key)) {
    const file = path.join(modelDir(apiVersion), `${kind}.js`);
    let found = null;
    if (/^[A-Za-z0-9.\/-]+$/.test(apiVersion) && /^[A-Za-z0-9]+$/.test(kind) && existsSync(file)) {
      found = (await import(pathToFileURL(file).href))[kind] ?? null;
    }
    classCache.set(key, found);
  }
  return classCache.get(key);
}

// ---------------------------------------------------------------------------------------
// Unknown fields: the types' declarations (.d.ts) name every field; the JSON schemas that
// kubernetes-models validates against allow any other. A small reader of those
// declarations: interfaces, type aliases, Array<T>, index signatures, inline objects,
// unions, imports between files.

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:"])\/\/[^\n]*/g, "$1");
}

function tokenize(text) {
  const tokens = [];
  const pattern = /\s+|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*)|(-?\d+(?:\.\d+)?)|(.)/gy;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    if (match[1] !== undefined) tokens.push({ t: "str", v: match[1].slice(1, -1) });
    else if (match[2] !== undefined) tokens.push({ t: "id", v: match[2] });
    else if (match[3] !== undefined) tokens.push({ t: "num", v: match[3] });
    else if (match[4] !== undefined) tokens.push({ t: "p", v: match[4] });
  }
  return tokens;
}

const LEAF = { k: "leaf" };
const FREE = { k: "free" };
const leafNames = new Set(["string", "number", "boolean", "null", "undefined", "never", "true", "false", "bigint"]);
const freeNames = new Set(["any", "unknown", "object", "Object"]);

class TypeParser {
  constructor(tokens) {
    this.tokens = tokens;
    this.i = 0;
  }
  peek(offset = 0) {
    return this.tokens[this.i + offset];
  }
  is(value, offset = 0) {
    const token = this.peek(offset);
    return token && token.t === "p" && token.v === value;
  }
  next() {
    return this.tokens[this.i++];
  }
  expect(value) {
    const token = this.next();
    if (!token || token.v !== value) throw new Error(`expected '${value}', got '${token ? token.v : "end"}'`);
  }
  union() {
    if (this.is("|")) this.next();
    const members = [this.postfix()];
    while (this.is("|")) {
      this.next();
      members.push(this.postfix());
    }
    while (this.is("&")) {  // intersections: treated as the first part
      this.next();
      this.postfix();
    }
    if (members.length === 1) return members[0];
    const shaped = members.filter((m) => m.k !== "leaf");
    if (shaped.length === 0) return LEAF;
    if (shaped.length === 1) return shaped[0];
    return FREE;
  }
  postfix() {
    let type = this.primary();
    for (;;) {
      if (this.is("[") && this.is("]", 1)) {
        this.next();
        this.next();
        type = { k: "array", of: type };
      } else if (this.is("[")) {  // IFoo["apiVersion"]: an indexed access, a literal
        this.skipBalanced("[", "]");
        type = LEAF;
      } else {
        return type;
      }
    }
  }
  // Skips from an opening token to its matching closing one, inclusive.
  skipBalanced(open, close) {
    let depth = 0;
    do {
      const token = this.next();
      if (!token) throw new Error(`unbalanced '${open}' in a type`);
      if (token.v === open) depth++;
      if (token.v === close) depth--;
    } while (depth > 0);
  }
  primary() {
    const token = this.next();
    if (!token) throw new Error("unexpected end of type");
    if (token.t === "str" || token.t === "num") return LEAF;
    if (token.t === "p" && token.v === "(") {
      const inner = this.union();
      this.expect(")");
      return inner;
    }
    if (token.t === "p" && token.v === "{") return this.objectBody();
    if (token.t === "id") {
      if (token.v === "Array" || token.v === "ReadonlyArray") {
        this.expect("<");
        const of = this.union();
        this.expect(">");
        return { k: "array", of };
      }
      if (token.v === "Record") {
        this.expect("<");
        this.union();
        this.expect(",");
        const of = this.union();
        this.expect(">");
        return { k: "map", of };
      }
      if (leafNames.has(token.v)) return LEAF;
      if (freeNames.has(token.v)) return FREE;
      if (this.is("<")) {  // another generic: not checked
        this.skipBalanced("<", ">");
        return FREE;
      }
      return { k: "ref", name: token.v };
    }
    throw new Error(`unexpected '${token.v}' in a type`);
  }
  // After '{': an index signature `[key: string]: T;` or properties `"name"?: T;`.
  objectBody() {
    const props = new Map();
    let indexed = null;
    while (!this.is("}")) {
      if (this.is(";") || this.is(",")) {
        this.next();
        continue;
      }
      if (this.is("[")) {
        this.next();
        this.next();  // the key's name
        this.expect(":");
        this.union();
        this.expect("]");
        this.expect(":");
        indexed = this.union();
        continue;
      }
      const name = this.next();
      if (!name || (name.t !== "str" && name.t !== "id")) throw new Error(`expected a property name, got '${name && name.v}'`);
      if (this.is("?")) this.next();
      this.expect(":");
      props.set(name.v, this.union());
    }
    this.expect("}");
    if (indexed && props.size === 0) return { k: "map", of: indexed };
    if (indexed) return FREE;
    return { k: "object", props };
  }
}

class Declarations {
  constructor() {
    this.files = new Map();
  }
  file(fileName) {
    if (this.files.has(fileName)) return this.files.get(fileName);
    const info = { fileName, imports: new Map(), aliases: new Map(), decls: new Map(), extendsOf: new Map() };
    this.files.set(fileName, info);
    const text = stripComments(readFileSync(fileName, "utf8"));
    for (const match of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
      for (const part of match[1].split(",")) {
        const names = part.trim().split(/\s+as\s+/);
        if (names[0]) info.imports.set((names[1] || names[0]).trim(), { name: names[0].trim(), from: match[2] });
      }
    }
    for (const match of text.matchAll(/export\s+type\s*\{([^}]*)\}/g)) {
      for (const part of match[1].split(",")) {
        const names = part.trim().split(/\s+as\s+/);
        if (names.length === 2) info.aliases.set(names[1].trim(), names[0].trim());
      }
    }
    const tokens = tokenize(text);
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (token.t !== "id") continue;
      if (token.v === "interface" && tokens[i + 1] && tokens[i + 1].t === "id") {
        const name = tokens[i + 1].v;
        let j = i + 2;
        const bases = [];
        if (tokens[j] && tokens[j].v === "extends") {
          j++;
          while (tokens[j] && tokens[j].v !== "{") {
            if (tokens[j].t === "id") bases.push(tokens[j].v);
            j++;
          }
        }
        const parser = new TypeParser(tokens);
        parser.i = j + 1;
        info.decls.set(name, parser.objectBody());
        info.extendsOf.set(name, bases);
        i = parser.i - 1;
      } else if (token.v === "type" && tokens[i + 1] && tokens[i + 1].t === "id" && tokens[i + 2] && tokens[i + 2].v === "=") {
        const parser = new TypeParser(tokens);
        parser.i = i + 3;
        info.decls.set(tokens[i + 1].v, parser.union());
        i = parser.i - 1;
      }
    }
    return info;
  }
  resolveModule(spec, fromFile) {
    if (spec.startsWith(".")) return path.resolve(path.dirname(fromFile), spec.replace(/\.js$/, "") + ".d.ts");
    for (let dir = path.dirname(fromFile); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, "node_modules", spec);
      if (existsSync(candidate + ".d.ts")) return candidate + ".d.ts";
      if (existsSync(path.join(candidate, "index.d.ts"))) return path.join(candidate, "index.d.ts");
      if (path.dirname(dir) === dir) return null;
    }
  }
  // The type a name stands for in a file: {type, file} or null.
  lookup(name, fileName, depth = 0) {
    if (depth > 8) return null;
    const info = this.file(fileName);
    const local = info.aliases.get(name) || name;
    if (info.decls.has(local)) {
      let type = info.decls.get(local);
      const bases = info.extendsOf.get(local) || [];
      if (type.k === "object" && bases.length) {
        const props = new Map(type.props);
        for (const base of bases) {
          if (base === "TypeMeta") {
            props.set("apiVersion", LEAF);
            props.set("kind", LEAF);
            continue;
          }
          const found = this.lookup(base, fileName, depth + 1);
          if (!found) return { type: FREE, file: fileName };
          const resolved = this.resolve(found.type, found.file);
          if (resolved.type.k !== "object") return { type: FREE, file: fileName };
          for (const [key, value] of resolved.type.props) if (!props.has(key)) props.set(key, { k: "in", type: value, file: resolved.file });
        }
        type = { k: "object", props };
      }
      return { type, file: fileName };
    }
    const imported = info.imports.get(name);
    if (!imported) return null;
    const target = this.resolveModule(imported.from, fileName);
    if (!target || !existsSync(target)) return null;
    return this.lookup(imported.name, target, depth + 1);
  }
  resolve(type, fileName) {
    let current = { type, file: fileName };
    for (let hops = 0; hops < 16; hops++) {
      if (current.type.k === "in") current = { type: current.type.type, file: current.type.file };
      else if (current.type.k === "ref") {
        const found = this.lookup(current.type.name, current.file);
        if (!found) return { type: FREE, file: current.file };
        current = found;
      } else return current;
    }
    return { type: FREE, file: fileName };
  }
  unknownFields(value, type, fileName, where, problems) {
    const { type: shape, file } = this.resolve(type, fileName);
    if (value === null || value === undefined) return;
    if (shape.k === "array" && Array.isArray(value)) {
      value.forEach((item, index) => this.unknownFields(item, shape.of, file, `${where}[${index}]`, problems));
    } else if (shape.k === "map" && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) this.unknownFields(item, shape.of, file, `${where}.${key}`, problems);
    } else if (shape.k === "object" && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (!shape.props.has(key)) problems.push(`${where}.${key}: unknown field`);
        else this.unknownFields(item, shape.props.get(key), file, `${where}.${key}`, problems);
      }
    }
  }
}
const declarations = new Declarations();

// ---------------------------------------------------------------------------------------
// The rendered objects

function parseRender(text) {
  const docs = YAML.parseAllDocuments(text);
  const objects = [];
  const problems = [];
  for (const doc of docs) {
    if (doc.errors.length) problems.push(...doc.errors.map((e) => e.message));
    const value = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value);
  }
  return { objects, problems };
}

const label = (o) => `${o.kind}/${o.metadata && o.metadata.name}`;
const podKinds = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]);

function podSpecOf(o) {
  if (o.kind === "Pod") return o.spec;
  if (o.kind === "CronJob") return o.spec?.jobTemplate?.spec?.template?.spec;
  return o.spec?.template?.spec;
}
function podLabelsOf(o) {
  if (o.kind === "Pod") return o.metadata?.labels || {};
  if (o.kind === "CronJob") return o.spec?.jobTemplate?.spec?.template?.metadata?.labels || {};
  return o.spec?.template?.metadata?.labels || {};
}
const isBatch = (o) => o.kind === "Job" || o.kind === "CronJob";

// Every container of every pod template: {owner, pod, container, init, batch}.
function containersOf(objects) {
  const out = [];
  for (const o of objects) {
    if (!podKinds.has(o.kind)) continue;
    const pod = podSpecOf(o);
    if (!pod) continue;
    for (const c of pod.initContainers || []) out.push({ owner: o, pod, container: c, init: true, batch: isBatch(o) });
    for (const c of pod.containers || []) out.push({ owner: o, pod, container: c, init: false, batch: isBatch(o) });
  }
  return out;
}

// Which of our binaries a container runs, from its command (the image's entrypoint is
// balanced): "balanced", "balance-gateway", "balancectl" or null.
function ourProgram(container) {
  const first = (container.command || [])[0];
  if (first) {
    const base = path.posix.basename(first);
    return ["balanced", "balance-gateway", "balancectl"].includes(base) ? base : null;
  }
  return /(^|\/)balanced(:|@|$)/.test(container.image || "") ? "balanced" : null;
}

function selectorMatches(selector, labels) {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels || {})) if (labels[key] !== value) return false;
  for (const e of selector.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// The flags' environment variables, from the sources

function flagEnvironment(root) {
  const read = (file) => readFileSync(path.join(root, file), "utf8");
  const tokenSuffixes = [...read("src/flags/token_checks.cc").matchAll(/envname\(\s*env_prefix\s*\+\s*"([A-Z0-9_]+)"\s*\)/g)].map((m) => m[1]);
  const balancedMain = read("apps/balanced/config.cc");
  const balanced = new Set([...balancedMain.matchAll(/envname\(\s*"([A-Z0-9_]+)"\s*\)/g)].map((m) => m[1]));
  if (/add_token_flags\([^)]*"BALANCED_"\s*\)/.test(balancedMain)) for (const s of tokenSuffixes) balanced.add(`BALANCED_${s}`);
  const gatewayMain = read("apps/balance-gateway/config.cc");
  const prefix = (gatewayMain.match(/std::string\("([A-Z_]+)"\)\s*\+\s*flag/) || [])[1] || "BALANCE_GATEWAY_";
  const gateway = new Set([...gatewayMain.matchAll(/envname\(\s*env\(\s*"([A-Z0-9_]+)"\s*\)\s*\)/g)].map((m) => prefix + m[1]));
  if (/add_token_flags\([^)]*env\(\s*""\s*\)\s*\)/.test(gatewayMain)) for (const s of tokenSuffixes) gateway.add(prefix + s);
  // The Redis TLS and AUTH flags (src/flags/redis_flags.cc), under each program's prefix:
  // add_redis_security_flags(app, ..., "cache", "BALANCED_CACHE_") and
  // add_redis_security_flags(app, ..., "rate-limit-store", env("RATE_LIMIT_STORE_")).
  const redisSuffixes = [...read("src/flags/redis_flags.cc").matchAll(/envname\(\s*env_prefix\s*\+\s*"([A-Z0-9_]+)"\s*\)/g)].map((m) => m[1]);
  for (const m of balancedMain.matchAll(/add_redis_security_flags\([^;]*?,\s*"([A-Z0-9_]+)"\s*\)\s*;/g)) for (const s of redisSuffixes) balanced.add(m[1] + s);
  for (const m of gatewayMain.matchAll(/add_redis_security_flags\([^;]*?,\s*env\(\s*"([A-Z0-9_]*)"\s*\)\s*\)\s*;/g)) for (const s of redisSuffixes) gateway.add(prefix + m[1] + s);
  const balancectl = new Set([...read("apps/balancectl/main.cc").matchAll(/envname\(\s*"([A-Z0-9_]+)"\s*\)/g)].map((m) => m[1]));
  return { balanced, "balance-gateway": gateway, balancectl, prefixes: { balanced: "BALANCED_", "balance-gateway": prefix, balancectl: "BALANCED_" } };
}

// ---------------------------------------------------------------------------------------
// The checks. Each returns a list of problems (empty: pass).

const secretName = /(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)$/i;
const secretArgName = /(password|passwd|passphrase|secret|token|api-?key|private-?key|credentials?)$/i;
function secretLooking(value) {
  const text = String(value);
  if (/[a-z][a-z0-9+.-]*:\/\/[^\/\s:@]*:[^\/\s@]+@/i.test(text)) return "a password in a URL (user:password@)";
  if (/-----BEGIN [A-Z0-9 ]*-----/.test(text)) return "a PEM block";
  if (/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./.test(text)) return "a JWT";
  if (/\b(AKIA|ASIA)[A-Z0-9]{16}\b/.test(text)) return "an AWS access key id";
  return null;
}

async function checkSchema(objects) {
  const problems = [];
  for (const o of objects) {
    if (!o.apiVersion || !o.kind || !o.metadata || !o.metadata.name) {
      problems.push(`an object without apiVersion, kind or metadata.name: ${JSON.stringify(o).slice(0, 120)}`);
      continue;
    }
    const Model = await modelClass(o.apiVersion, o.kind);
    if (!Model) {
      problems.push(`${label(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    // kustomize v5 wraps a Secret's base64 at 76 columns; the API server's decoder (Go's
    // encoding/base64) skips the newlines, the schema's "byte" format does not.
    const subject = o.kind === "Secret" && o.data ? { ...o, data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, String(v).replace(/\s+/g, "")])) } : o;
    try {
      new Model(subject).validate();
    } catch (error) {
      problems.push(`${label(o)}: ${String(error.message || error).split("\n").slice(0, 6).join("; ")}`);
    }
    const declarationFile = path.join(modelDir(o.apiVersion), `${o.kind}.d.ts`);
    const found = declarations.lookup(`I${o.kind}`, declarationFile);
    if (!found) {
      problems.push(`${label(o)}: no type declaration I${o.kind} in ${declarationFile}`);
      continue;
    }
    const unknown = [];
    declarations.unknownFields(o, found.type, found.file, label(o), unknown);
    problems.push(...unknown);
  }
  return problems;
}

function checkProbes(objects) {
  const problems = [];
  for (const { owner, container, init, batch } of containersOf(objects)) {
    if (init || batch) continue;
    const where = `${label(owner)} container ${container.name}`;
    const ports = container.ports || [];
    for (const kind of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const probe = container[kind];
      if (!probe) {
        problems.push(`${where}: no ${kind}`);
        continue;
      }
      const handler = probe.httpGet || probe.tcpSocket || probe.grpc;
      if (handler) {
        const port = handler.port;
        const known = ports.some((p) => p.name === port || p.containerPort === port);
        if (!known) problems.push(`${where}: ${kind} on port ${port}, which the container does not declare`);
      } else if (!probe.exec) {
        problems.push(`${where}: ${kind} has no handler`);
      }
    }
    if (["balanced", "balance-gateway"].includes(ourProgram(container))) {
      const want = { startupProbe: "/healthz", livenessProbe: "/healthz", readinessProbe: "/readyz" };
      for (const [kind, pathWanted] of Object.entries(want)) {
        const http = container[kind] && container[kind].httpGet;
        if (!http || http.port !== "admin" || http.path !== pathWanted) {
          problems.push(`${where}: ${kind} must be httpGet ${pathWanted} on the port named admin (--admin-listen)`);
        }
      }
    }
  }
  return problems;
}

function checkResources(objects) {
  const problems = [];
  for (const { owner, container, init } of containersOf(objects)) {
    const where = `${label(owner)} ${init ? "initContainer" : "container"} ${container.name}`;
    const r = container.resources || {};
    if (!r.requests || r.requests.cpu === undefined) problems.push(`${where}: no resources.requests.cpu`);
    if (!r.requests || r.requests.memory === undefined) problems.push(`${where}: no resources.requests.memory`);
    if (!r.limits || r.limits.memory === undefined) problems.push(`${where}: no resources.limits.memory`);
  }
  return problems;
}

function checkSecurity(objects) {
  const problems = [];
  const seen = new Set();
  for (const { owner, pod, container, init } of containersOf(objects)) {
    const where = `${label(owner)} ${init ? "initContainer" : "container"} ${container.name}`;
    if (!seen.has(owner)) {
      seen.add(owner);
      for (const host of ["hostNetwork", "hostPID", "hostIPC"]) if (pod[host]) problems.push(`${label(owner)}: ${host}`);
    }
    const podContext = pod.securityContext || {};
    const c = container.securityContext || {};
    const effective = (key) => (c[key] !== undefined ? c[key] : podContext[key]);
    if (effective("runAsNonRoot") !== true) problems.push(`${where}: runAsNonRoot is not true`);
    const user = effective("runAsUser");
    const group = effective("runAsGroup");
    const ours = ourProgram(container) !== null;
    if (ours) {
      if (user !== 10001) problems.push(`${where}: runAsUser ${user}, want 10001 (the image's user)`);
      if (group !== 10001) problems.push(`${where}: runAsGroup ${group}, want 10001`);
    } else {
      if (!Number.isInteger(user) || user === 0) problems.push(`${where}: runAsUser not set to a non-root uid`);
      if (!Number.isInteger(group) || group === 0) problems.push(`${where}: runAsGroup not set to a non-root gid`);
    }
    if (c.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
    if (c.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
    if (c.privileged === true) problems.push(`${where}: privileged`);
    const caps = c.capabilities || {};
    if (!(caps.drop || []).includes("ALL")) problems.push(`${where}: capabilities.drop lacks ALL`);
    if ((caps.add || []).length) problems.push(`${where}: capabilities.add ${caps.add.join(",")}`);
    const seccomp = effective("seccompProfile");
    if (!seccomp || !["RuntimeDefault", "Localhost"].includes(seccomp.type)) problems.push(`${where}: seccompProfile is not RuntimeDefault`);
  }
  return problems;
}

// `notes` (when given) collects Secret references instead of failing them: someone else's
// program (Fluent Bit's Elasticsearch password) may have no way to read a file.
function checkSecrets(objects, notes = null) {
  const problems = [];
  for (const { owner, container, init } of containersOf(objects)) {
    const where = `${label(owner)} ${init ? "initContainer" : "container"} ${container.name}`;
    for (const env of container.env || []) {
      if (env.valueFrom && env.valueFrom.secretKeyRef) (notes || problems).push(`${where}: env ${env.name} from secretKeyRef (mount the Secret as a file instead)`);
      if (env.value !== undefined && env.value !== "") {
        if (secretName.test(env.name)) problems.push(`${where}: env ${env.name} holds a value that its name says is secret`);
        const why = secretLooking(env.value);
        if (why) problems.push(`${where}: env ${env.name} holds ${why}`);
      }
    }
    for (const from of container.envFrom || []) {
      if (from.secretRef) (notes || problems).push(`${where}: envFrom Secret ${from.secretRef.name} (mount it as files instead)`);
    }
    const words = [...(container.command || []), ...(container.args || [])];
    words.forEach((word, index) => {
      const text = String(word);
      const why = secretLooking(text);
      if (why) problems.push(`${where}: argument ${index} holds ${why}`);
      const flag = text.match(/^--?([A-Za-z0-9_.-]+)(=(.*))?$/);
      if (flag && secretArgName.test(flag[1])) {
        const value = flag[3] !== undefined ? flag[3] : words[index + 1];
        if (value !== undefined && value !== "" && !String(value).startsWith("-")) problems.push(`${where}: argument ${text.split("=")[0]} with a value on the command line`);
      }
    });
  }
  for (const o of objects) {
    if (o.kind !== "ConfigMap") continue;
    for (const [key, value] of Object.entries(o.data || {})) {
      if (secretName.test(key) && value !== "") problems.push(`${label(o)}: ${key} holds a value that its name says is secret`);
      const why = secretLooking(value);
      if (why) problems.push(`${label(o)}: ${key} holds ${why}`);
    }
  }
  return problems;
}

// The environment a container gets: {name: {value, source}} from env and envFrom ConfigMaps.
function environmentOf(objects, owner, container, problems, where) {
  const env = new Map();
  const namespace = owner.metadata.namespace;
  for (const from of container.envFrom || []) {
    if (!from.configMapRef) continue;
    const map = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef.name && o.metadata.namespace === namespace);
    if (!map) {
      problems.push(`${where}: envFrom ConfigMap ${from.configMapRef.name}, which is not in the render`);
      continue;
    }
    for (const [key, value] of Object.entries(map.data || {})) env.set((from.prefix || "") + key, { value, source: `ConfigMap ${map.metadata.name}` });
  }
  for (const e of container.env || []) env.set(e.name, { value: e.value, source: "env" });
  return env;
}

function listenPort(text) {
  const match = /^(.*):(\d+)$/.exec(text || "");
  return match ? { host: match[1], port: Number(match[2]) } : null;
}

function checkFlags(objects, flags) {
  const problems = [];
  for (const { owner, pod, container, init } of containersOf(objects)) {
    const program = ourProgram(container);
    if (!program) continue;
    const where = `${label(owner)} ${init ? "initContainer" : "container"} ${container.name} (${program})`;
    const known = flags[program];
    const env = environmentOf(objects, owner, container, problems, where);
    if (program !== "balancectl") {
      for (const [name, { source }] of env) {
        if (!known.has(name)) problems.push(`${where}: ${name} (${source}) is no flag's environment variable`);
      }
    }
    const value = (suffix) => (env.get(flags.prefixes[program] + suffix) || {}).value;
    const portNamed = (name) => (container.ports || []).find((p) => p.name === name);
    const mounts = container.volumeMounts || [];
    const volumes = pod.volumes || [];
    // A file a flag names must be inside a mounted volume; a secret one in a Secret volume,
    // mounted whole (a subPath mount never sees a rotated Secret).
    const fileIn = (flagName, file, mustBeSecret) => {
      if (!file) return;
      // A CA bundle may be the image's own (the system trust store, deploy/Dockerfile).
      if (!mustBeSecret && file.startsWith("/etc/ssl/certs/")) return;
      const mount = mounts.find((m) => file.startsWith(m.mountPath.replace(/\/?$/, "/")));
      if (!mount) return problems.push(`${where}: ${flagName}=${file} is in no mounted volume`);
      const volume = volumes.find((v) => v.name === mount.name);
      if (!volume) return problems.push(`${where}: volumeMount ${mount.name} names no volume`);
      if (mustBeSecret && !volume.secret) problems.push(`${where}: ${flagName}=${file} is not in a Secret volume`);
      if (mount.subPath || mount.subPathExpr) problems.push(`${where}: ${flagName}: volume ${mount.name} mounted with subPath (a rotated Secret never arrives)`);
      if (volume.secret) {
        const relative = file.slice(mount.mountPath.replace(/\/?$/, "/").length);
        const items = volume.secret.items;
        if (items && !items.some((i) => i.path === relative)) problems.push(`${where}: ${flagName}=${file}: the Secret volume ${mount.name} has no item ${relative}`);
        const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name === volume.secret.secretName && o.metadata.namespace === owner.metadata.namespace);
        if (secret) {
          const key = items ? (items.find((i) => i.path === relative) || {}).key : relative;
          const data = { ...(secret.data || {}), ...(secret.stringData || {}) };
          if (key && !(key in data)) problems.push(`${where}: ${flagName}=${file}: Secret ${secret.metadata.name} has no key ${key}`);
        }
      }
    };
    // The CA file a MySQL URL names: mysql://...?tls=verify-identity&tls-ca=FILE.
    const dbCa = () => {
      const match = /[?&]tls-ca=([^&#]*)/.exec(String(value("DB") || ""));
      if (match) fileIn("BALANCED_DB tls-ca", decodeURIComponent(match[1]), false);
    };
    if (program === "balancectl") {
      if (!value("DB")) problems.push(`${where}: no BALANCED_DB`);
      else if (!String(value("DB")).startsWith("mysql://")) problems.push(`${where}: BALANCED_DB is not mysql://`);
      fileIn("BALANCED_DB_PASSWORD_FILE", value("DB_PASSWORD_FILE"), true);
      dbCa();
      continue;
    }
    const listen = listenPort(value("LISTEN"));
    const admin = listenPort(value("ADMIN_LISTEN"));
    const apiPortName = program === "balanced" ? "http" : "https";
    if (!listen) problems.push(`${where}: no ${flags.prefixes[program]}LISTEN HOST:PORT`);
    else if (!portNamed(apiPortName) || portNamed(apiPortName).containerPort !== listen.port) problems.push(`${where}: LISTEN port ${listen.port} is not the container port named ${apiPortName}`);
    if (!admin) problems.push(`${where}: no ${flags.prefixes[program]}ADMIN_LISTEN HOST:PORT (the probes and Prometheus need it)`);
    else {
      if (!portNamed("admin") || portNamed("admin").containerPort !== admin.port) problems.push(`${where}: ADMIN_LISTEN port ${admin.port} is not the container port named admin`);
      if (!["0.0.0.0", "[::]", "::"].includes(admin.host)) problems.push(`${where}: ADMIN_LISTEN ${admin.host} is not reachable by the kubelet`);
    }
    if (program === "balanced") {
      const db = value("DB") || "";
      if (!db.startsWith("mysql://")) problems.push(`${where}: BALANCED_DB is not mysql:// (SQLite needs one writable volume per ledger, not N replicas)`);
      if (!value("DB_PASSWORD_FILE")) problems.push(`${where}: no BALANCED_DB_PASSWORD_FILE`);
      fileIn("BALANCED_DB_PASSWORD_FILE", value("DB_PASSWORD_FILE"), true);
      dbCa();
      fileIn("BALANCED_CACHE_PASSWORD_FILE", value("CACHE_PASSWORD_FILE"), true);
      fileIn("BALANCED_CACHE_CA_FILE", value("CACHE_CA_FILE"), false);
      if (String(value("TRUST_NETWORK")) !== "true" && !value("JWKS")) problems.push(`${where}: neither BALANCED_TRUST_NETWORK=true nor token checks: balanced refuses a non-loopback --listen`);
    } else {
      for (const required of ["UPSTREAM", "JWKS", "JWT_ISSUER", "JWT_AUDIENCE", "TLS_CERT", "TLS_KEY"]) {
        if (!value(required)) problems.push(`${where}: no ${flags.prefixes[program]}${required}`);
      }
      fileIn("TLS_CERT", value("TLS_CERT"), true);
      fileIn("TLS_KEY", value("TLS_KEY"), true);
      fileIn("RATE_LIMIT_STORE_PASSWORD_FILE", value("RATE_LIMIT_STORE_PASSWORD_FILE"), true);
      fileIn("RATE_LIMIT_STORE_CA_FILE", value("RATE_LIMIT_STORE_CA_FILE"), false);
      const jwks = value("JWKS") || "";
      if (jwks && !/^https?:\/\//.test(jwks)) fileIn("JWKS", jwks, false);
      if (/^http:\/\//.test(jwks)) problems.push(`${where}: JWKS over http:// is refused for a non-loopback host`);
      for (const upstream of String(value("UPSTREAM") || "").split(",").filter(Boolean)) {
        const match = /^http:\/\/([^:/]+):(\d+)\/?$/.exec(upstream);
        if (!match) {
          problems.push(`${where}: UPSTREAM ${upstream} is not http://HOST:PORT`);
          continue;
        }
        const service = objects.find((o) => o.kind === "Service" && o.metadata.name === match[1].split(".")[0] && o.metadata.namespace === owner.metadata.namespace);
        const balanced = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "balanced" && o.metadata.namespace === owner.metadata.namespace);
        if (!service || !balanced) problems.push(`${where}: UPSTREAM ${upstream} names no Service of this render in front of balanced`);
        else {
          if (!selectorMatches({ matchLabels: service.spec.selector }, podLabelsOf(balanced))) problems.push(`${where}: Service ${service.metadata.name} does not select balanced's pods`);
          if (!(service.spec.ports || []).some((p) => p.port === Number(match[2]))) problems.push(`${where}: Service ${service.metadata.name} has no port ${match[2]}`);
          // Each address the name resolves to is one replica to the gateway: a ClusterIP's
          // one virtual address makes every pod one replica (one refused connection ejects
          // them all), so the name must be a headless Service's, listing not-ready pods too
          // (the gateway's own health checks decide).
          if (service.spec.clusterIP !== "None") problems.push(`${where}: UPSTREAM ${upstream}: Service ${service.metadata.name} is not headless (clusterIP None): the gateway would see every pod as one replica`);
          else if (service.spec.publishNotReadyAddresses !== true) problems.push(`${where}: UPSTREAM ${upstream}: the headless Service ${service.metadata.name} lacks publishNotReadyAddresses: true (the gateway's health checks decide)`);
        }
      }
      const resolve = value("UPSTREAM_RESOLVE_S");
      if (resolve !== undefined && !(/^\d+$/.test(String(resolve)) && Number(resolve) >= 1 && Number(resolve) <= 3600)) {
        problems.push(`${where}: UPSTREAM_RESOLVE_S ${resolve} is not a whole number of seconds in 1-3600 (the gateway refuses to start)`);
      }
    }
  }
  return problems;
}

// NetworkPolicies of a namespace that select pods with `labels` for a direction.
function policiesFor(objects, namespace, labels, direction) {
  return objects.filter((o) => {
    if (o.kind !== "NetworkPolicy" || o.metadata.namespace !== namespace) return false;
    if (!selectorMatches(o.spec.podSelector || {}, labels) && Object.keys(o.spec.podSelector || {}).length) return false;
    const types = o.spec.policyTypes || (direction === "Egress" ? (o.spec.egress ? ["Ingress", "Egress"] : ["Ingress"]) : ["Ingress"]);
    return types.includes(direction);
  });
}

// Does a NetworkPolicy rule's `ports` cover the container port `port` ({name, containerPort, protocol})?
function rulePortsCover(ports, port) {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol || "TCP") !== (port.protocol || "TCP")) return false;
    if (p.port === undefined) return true;
    if (p.port === port.name) return true;
    if (typeof p.port === "number") return port.containerPort >= p.port && port.containerPort <= (p.endPort || p.port);
    return false;
  });
}

// The Deployment called `name`; when there is none, says so in `problems` (if given).
function deploymentNamed(objects, name, problems) {
  const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === name);
  if (!d && problems) problems.push(`no Deployment ${name}`);
  return d;
}

function checkNetwork(objects) {
  const problems = [];
  const balanced = deploymentNamed(objects, "balanced");
  const gateway = deploymentNamed(objects, "balance-gateway");
  if (!balanced || !gateway) return ["the render lacks the balanced or balance-gateway Deployment"];
  const portsOf = (d, name) => (podSpecOf(d).containers.find((c) => c.name === name) || {}).ports || [];
  const gatewayLabels = podLabelsOf(gateway);
  const isPrometheusPeer = (peer) =>
    peer.namespaceSelector && Object.keys(peer.namespaceSelector).length > 0 && peer.podSelector && Object.keys(peer.podSelector).length > 0 && !peer.ipBlock;
  const onlyGateway = (peer, namespace) => {
    if (peer.ipBlock) return false;
    if (!peer.podSelector) return false;
    if (peer.namespaceSelector) {
      const names = peer.namespaceSelector.matchLabels || {};
      if (Object.keys(peer.namespaceSelector).length !== 1 || Object.keys(names).length !== 1 || names["kubernetes.io/metadata.name"] !== namespace) return false;
    }
    const wanted = (peer.podSelector.matchLabels || {})["app.kubernetes.io/name"];
    return wanted === "balance-gateway" && selectorMatches(peer.podSelector, gatewayLabels);
  };
  for (const [d, container, apiName, allowedEgress] of [
    [balanced, "balanced", "http", [53, 3306, 6379]],
    [gateway, "balance-gateway", "https", [53, 443, 6379, 8080]],
  ]) {
    const namespace = d.metadata.namespace;
    const labels = podLabelsOf(d);
    const ports = portsOf(d, container);
    const api = ports.find((p) => p.name === apiName);
    const admin = ports.find((p) => p.name === "admin");
    if (!api || !admin) {
      problems.push(`${label(d)}: container ${container} lacks the ports ${apiName} and admin`);
      continue;
    }
    const ingress = policiesFor(objects, namespace, labels, "Ingress");
    const egress = policiesFor(objects, namespace, labels, "Egress");
    if (!ingress.length) problems.push(`${label(d)}: no NetworkPolicy isolates its pods for ingress: anything reaches every port`);
    if (!egress.length) problems.push(`${label(d)}: no NetworkPolicy isolates its pods for egress`);
    for (const policy of ingress) {
      (policy.spec.ingress || []).forEach((rule, index) => {
        const where = `${label(policy)} ingress[${index}]`;
        const peers = rule.from || [];
        const coversApi = rulePortsCover(rule.ports, api);
        const coversAdmin = rulePortsCover(rule.ports, admin);
        if (container === "balanced" && coversApi) {
          if (!peers.length) problems.push(`${where}: balanced's API port ${api.containerPort} open to every source (only the gateway may reach it)`);
          for (const peer of peers) if (!onlyGateway(peer, namespace)) problems.push(`${where}: balanced's API port ${api.containerPort} reachable from ${JSON.stringify(peer)}, not only the gateway's pods`);
        }
        if (coversAdmin) {
          if (!peers.length) problems.push(`${where}: ${container}'s admin port ${admin.containerPort} open to every source (Prometheus only)`);
          for (const peer of peers) if (!isPrometheusPeer(peer)) problems.push(`${where}: ${container}'s admin port reachable from ${JSON.stringify(peer)}: want a namespace and pod selector (Prometheus)`);
        }
        if (peers.some(isPrometheusPeer)) {
          const other = ports.filter((p) => p.name !== "admin" && rulePortsCover(rule.ports, p));
          if (other.length) problems.push(`${where}: Prometheus may reach ${other.map((p) => p.name).join(", ")} (the admin ports only)`);
        }
      });
    }
    for (const policy of egress) {
      (policy.spec.egress || []).forEach((rule, index) => {
        const where = `${label(policy)} egress[${index}]`;
        if (!rule.ports || !rule.ports.length) return problems.push(`${where}: ${container} may connect to any port`);
        for (const p of rule.ports) {
          if (typeof p.port !== "number" || !allowedEgress.includes(p.port) || (p.endPort && p.endPort !== p.port)) {
            problems.push(`${where}: ${container} egress to port ${p.port}${p.endPort ? "-" + p.endPort : ""}, not one it uses (${allowedEgress.join(", ")})`);
          }
        }
      });
    }
  }
  return problems;
}

function checkServices(objects) {
  const problems = [];
  const balanced = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "balanced");
  const gateway = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "balance-gateway");
  if (!balanced || !gateway) return ["the render lacks the balanced or balance-gateway Deployment"];
  // The Services the gateway's BALANCE_GATEWAY_UPSTREAM names (http://NAME[.ns...]:PORT,...).
  const gatewayContainer = podSpecOf(gateway).containers.find((c) => ourProgram(c) === "balance-gateway");
  const upstreamNames = new Set();
  if (gatewayContainer) {
    const env = environmentOf(objects, gateway, gatewayContainer, [], label(gateway));
    for (const upstream of String((env.get("BALANCE_GATEWAY_UPSTREAM") || {}).value || "").split(",")) {
      const match = /^http:\/\/([^:/]+):\d+\/?$/.exec(upstream.trim());
      if (match) upstreamNames.add(match[1].split(".")[0]);
    }
  }
  let balancedServices = 0;
  for (const s of objects.filter((o) => o.kind === "Service")) {
    if (!s.spec.selector || !selectorMatches({ matchLabels: s.spec.selector }, podLabelsOf(balanced)) || s.metadata.namespace !== balanced.metadata.namespace) continue;
    balancedServices++;
    if ((s.spec.type || "ClusterIP") !== "ClusterIP") problems.push(`${label(s)}: selects balanced but is ${s.spec.type}, not ClusterIP`);
    if ((s.spec.externalIPs || []).length) problems.push(`${label(s)}: selects balanced and has externalIPs`);
    if (s.spec.clusterIP === "None") {
      // Headless: every pod's address in DNS. Only for the gateway, whose health checks
      // decide, so not-ready pods are listed too.
      if (!upstreamNames.has(s.metadata.name) || gateway.metadata.namespace !== s.metadata.namespace) problems.push(`${label(s)}: a headless Service of balanced that is not the gateway's BALANCE_GATEWAY_UPSTREAM`);
      if (s.spec.publishNotReadyAddresses !== true) problems.push(`${label(s)}: headless without publishNotReadyAddresses: true (the gateway's health checks decide, and a pod just started would wait for the kubelet's readiness as well)`);
    } else if (s.spec.publishNotReadyAddresses) {
      problems.push(`${label(s)}: publishNotReadyAddresses on a ClusterIP Service: kube-proxy would send to pods that are not ready`);
    }
  }
  if (!balancedServices) problems.push("no Service selects balanced's pods");
  const gatewayService = objects.find((o) => o.kind === "Service" && o.spec.selector && selectorMatches({ matchLabels: o.spec.selector }, podLabelsOf(gateway)));
  if (!gatewayService) problems.push("no Service selects the gateway's pods");
  else {
    if (gatewayService.spec.type !== "LoadBalancer") problems.push(`${label(gatewayService)}: the gateway's Service is ${gatewayService.spec.type}, not LoadBalancer`);
    const https = (gatewayService.spec.ports || []).find((p) => p.port === 443);
    const container = podSpecOf(gateway).containers.find((c) => c.name === "balance-gateway") || {};
    const target = https && (container.ports || []).find((p) => p.name === https.targetPort || p.containerPort === https.targetPort);
    if (!https || !target || target.name !== "https") problems.push(`${label(gatewayService)}: no port 443 to the gateway's TLS port (named https)`);
  }
  return problems;
}

function checkAutoscaling(objects, minReplicas) {
  const problems = [];
  const metricOf = { balanced: "balanced_http_requests_per_second", "balance-gateway": "balance_gateway_http_requests_per_second" };
  for (const name of Object.keys(metricOf)) {
    const d = deploymentNamed(objects, name, problems);
    if (!d) continue;
    if (d.spec.replicas !== undefined) problems.push(`${label(d)}: spec.replicas is set; the HPA owns the count (apply would reset it)`);
    const hpas = objects.filter((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef && o.spec.scaleTargetRef.kind === "Deployment" && o.spec.scaleTargetRef.name === name && o.metadata.namespace === d.metadata.namespace);
    if (hpas.length !== 1) {
      problems.push(`${label(d)}: ${hpas.length} HorizontalPodAutoscalers target it, want 1`);
      continue;
    }
    const hpa = hpas[0];
    if (hpa.apiVersion !== "autoscaling/v2") problems.push(`${label(hpa)}: ${hpa.apiVersion}, want autoscaling/v2`);
    const metrics = hpa.spec.metrics || [];
    if (!metrics.some((m) => m.type === "Resource" && m.resource && m.resource.name === "cpu" && m.resource.target && m.resource.target.type === "Utilization")) problems.push(`${label(hpa)}: no CPU utilization metric`);
    const pods = metrics.find((m) => m.type === "Pods");
    if (!pods) problems.push(`${label(hpa)}: no Pods metric (requests per second per pod)`);
    else if (pods.pods.metric.name !== metricOf[name]) problems.push(`${label(hpa)}: Pods metric ${pods.pods.metric.name}, want ${metricOf[name]} (OPERATIONS.md, "The HPA's request-rate metric")`);
    if ((hpa.spec.minReplicas || 1) < minReplicas) problems.push(`${label(hpa)}: minReplicas ${hpa.spec.minReplicas}, want at least ${minReplicas}`);
    if (hpa.spec.maxReplicas < (hpa.spec.minReplicas || 1)) problems.push(`${label(hpa)}: maxReplicas below minReplicas`);
  }
  return problems;
}

function checkDisruption(objects) {
  const problems = [];
  for (const name of ["balanced", "balance-gateway"]) {
    const d = deploymentNamed(objects, name, problems);
    if (!d) continue;
    const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget" && o.metadata.namespace === d.metadata.namespace && selectorMatches(o.spec.selector, podLabelsOf(d)));
    if (pdbs.length !== 1) problems.push(`${label(d)}: ${pdbs.length} PodDisruptionBudgets select its pods, want 1`);
    for (const pdb of pdbs) if (pdb.spec.maxUnavailable === undefined && pdb.spec.minAvailable === undefined) problems.push(`${label(pdb)}: neither maxUnavailable nor minAvailable`);
  }
  return problems;
}

function checkTopology(objects, zoneRequired) {
  const problems = [];
  for (const name of ["balanced", "balance-gateway"]) {
    const d = deploymentNamed(objects, name, problems);
    if (!d) continue;
    const constraints = podSpecOf(d).topologySpreadConstraints || [];
    for (const key of ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]) {
      const found = constraints.filter((c) => c.topologyKey === key);
      if (found.length !== 1) {
        problems.push(`${label(d)}: ${found.length} spread constraints over ${key}, want 1`);
        continue;
      }
      const c = found[0];
      if (!(c.maxSkew >= 1)) problems.push(`${label(d)}: spread over ${key} without maxSkew`);
      if (!selectorMatches(c.labelSelector, podLabelsOf(d))) problems.push(`${label(d)}: spread over ${key} does not select its own pods`);
      if (zoneRequired && key.endsWith("/zone") && c.whenUnsatisfiable !== "DoNotSchedule") problems.push(`${label(d)}: the zone spread is ${c.whenUnsatisfiable}, want DoNotSchedule here`);
    }
  }
  return problems;
}

function checkDrain(objects) {
  const problems = [];
  for (const { owner, pod, container, init, batch } of containersOf(objects)) {
    const program = ourProgram(container);
    if (init || batch || !["balanced", "balance-gateway"].includes(program)) continue;
    const where = `${label(owner)} container ${container.name}`;
    const preStop = container.lifecycle && container.lifecycle.preStop;
    if (preStop && preStop.exec) problems.push(`${where}: preStop exec: the image has no shell or sleep binary`);
    const env = environmentOf(objects, owner, container, [], where);
    // The time the pod keeps serving after it is told to stop, while its endpoint's removal
    // reaches every load balancer: balanced's own --drain-delay-ms (readiness off at once,
    // still serving), or the kubelet's preStop sleep (the gateway's, which has no such flag).
    let delay;
    if (program === "balanced" && env.has("BALANCED_DRAIN_DELAY_MS")) {
      delay = Math.ceil(Number(env.get("BALANCED_DRAIN_DELAY_MS").value) / 1000);
      if (!(delay > 0)) problems.push(`${where}: BALANCED_DRAIN_DELAY_MS is not a positive number of milliseconds`);
      if (preStop && preStop.sleep) problems.push(`${where}: both a preStop sleep and --drain-delay-ms: the delays add up`);
    } else if (preStop && preStop.sleep) {
      delay = preStop.sleep.seconds;
    } else {
      problems.push(program === "balanced"
        ? `${where}: neither BALANCED_DRAIN_DELAY_MS nor a preStop sleep: the listener closes before the endpoint is removed`
        : `${where}: no preStop sleep (the kubelet's sleep action; the image has no shell for exec)`);
      continue;
    }
    let drain;
    if (program === "balance-gateway") {
      drain = Number((env.get("BALANCE_GATEWAY_DRAIN_TIMEOUT_S") || { value: 25 }).value);
    } else {
      // The queue is committed first (seconds), then in-flight answers get --drain-grace-ms.
      drain = Math.ceil(Number((env.get("BALANCED_DRAIN_GRACE_MS") || { value: 5000 }).value) / 1000) + 10;
    }
    const grace = pod.terminationGracePeriodSeconds === undefined ? 30 : pod.terminationGracePeriodSeconds;
    const need = delay + drain + 5;
    if (grace < need) problems.push(`${where}: terminationGracePeriodSeconds ${grace} < drain delay ${delay} s + drain ${drain} s + 5 s`);
  }
  return problems;
}

function checkMonitoring(objects) {
  const problems = [];
  const want = { balanced: "balanced", "balance-gateway": "balance-gateway" };
  for (const [deploymentName, containerName] of Object.entries(want)) {
    const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === deploymentName);
    if (!d) {
      problems.push(`no Deployment ${deploymentName}`);
      continue;
    }
    const container = podSpecOf(d).containers.find((c) => c.name === containerName);
    if (!container) problems.push(`${label(d)}: no container named ${containerName} (BalancedPodRestarting reads container names)`);
    if (podLabelsOf(d)["app.kubernetes.io/name"] !== deploymentName) problems.push(`${label(d)}: pod label app.kubernetes.io/name is not ${deploymentName}`);
    const monitors = objects.filter((o) => o.kind === "PodMonitor" && o.metadata.namespace === d.metadata.namespace && selectorMatches(o.spec.selector, podLabelsOf(d)));
    if (monitors.length !== 1) problems.push(`${label(d)}: ${monitors.length} PodMonitors select its pods, want 1`);
    for (const m of monitors) {
      for (const endpoint of m.spec.podMetricsEndpoints || []) {
        if (!container || !(container.ports || []).some((p) => p.name === endpoint.port)) problems.push(`${label(m)}: port ${endpoint.port} is no port of ${containerName}`);
      }
    }
  }
  if (!objects.some((o) => o.kind === "PrometheusRule")) problems.push("no PrometheusRule (base/monitoring.yaml)");
  return problems;
}

// ---------------------------------------------------------------------------------------

const profiles = {
  base: { app: true, minReplicas: 2, zoneRequired: false },
  dev: { app: true, minReplicas: 1, zoneRequired: false },
  production: { app: true, minReplicas: 3, zoneRequired: true, operatorSecrets: true },
  job: { app: false, operatorSecrets: true },
  foreign: { foreign: true },
};

let flagCache = null;
async function runChecks(objects, profileName) {
  const profile = profiles[profileName];
  if (!profile) throw new Error(`unknown profile ${profileName}`);
  if (!flagCache) flagCache = flagEnvironment(options.source);
  const results = [];
  results.push(["schema", await checkSchema(objects)]);
  if (profile.foreign) {
    // Someone else's manifests (deploy/logging): the schemas, and no secret written into
    // an env value, an argument or a ConfigMap. Secrets passed as env from a Secret are
    // listed, not failed: not every program can read its secret from a file.
    const notes = [];
    results.push(["secrets (literal values)", checkSecrets(objects, notes)]);
    for (const note of notes) console.log(`note: ${note}`);
    return results;
  }
  results.push(["secrets", checkSecrets(objects)]);
  results.push(["probes", checkProbes(objects)]);
  results.push(["resources", checkResources(objects)]);
  results.push(["security", checkSecurity(objects)]);
  results.push(["flags", checkFlags(objects, flagCache)]);
  if (profile.operatorSecrets) {
    // Production's Secrets are made by the operator (kubectl create secret), never rendered
    // from files in the repository.
    results.push(["operator-made secrets", objects.filter((o) => o.kind === "Secret").map((o) => `${label(o)}: a Secret in the render`)]);
  }
  if (!profile.app) {
    if (!containersOf(objects).some(({ container }) => ourProgram(container))) results.push(["workload", ["no container of ours in this render"]]);
    return results;
  }
  results.push(["network", checkNetwork(objects)]);
  results.push(["services", checkServices(objects)]);
  results.push(["autoscaling", checkAutoscaling(objects, profile.minReplicas)]);
  results.push(["disruption", checkDisruption(objects)]);
  results.push(["topology", checkTopology(objects, profile.zoneRequired)]);
  results.push(["drain", checkDrain(objects)]);
  results.push(["monitoring", checkMonitoring(objects)]);
  return results;
}

function report(name, check, problems) {
  if (problems.length === 0) {
    console.log(`PASS ${name}: ${check}`);
  } else {
    console.log(`FAIL ${name}: ${check}`);
    for (const p of problems.slice(0, 40)) console.log(`    ${p}`);
    if (problems.length > 40) console.log(`    ... and ${problems.length - 40} more`);
  }
}

function load(file) {
  const { objects, problems } = parseRender(readFileSync(file, "utf8"));
  return { objects, problems };
}

// The negative self-checks: each mutation of a render that passes must fail its check.
async function selfTest(devFile, productionFile) {
  const dev = load(devFile).objects;
  const production = load(productionFile).objects;
  const copy = (objects) => JSON.parse(JSON.stringify(objects));
  const find = (objects, kind, name) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`self-test: no ${kind}/${name} in the render`);
    return o;
  };
  const container = (objects, deployment, name) => podSpecOf(find(objects, "Deployment", deployment)).containers.find((c) => c.name === name);
  const configMap = (objects, prefix) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith(prefix));
  const cases = [
    ["a container without a readinessProbe", "probes", production, (o) => delete container(o, "balanced", "balanced").readinessProbe],
    ["a container without any probe", "probes", production, (o) => { const c = container(o, "balance-gateway", "balance-gateway"); delete c.startupProbe; delete c.livenessProbe; delete c.readinessProbe; }],
    ["a probe on a port the container lacks", "probes", production, (o) => { container(o, "balanced", "balanced").livenessProbe.httpGet.port = 9999; }],
    ["balanced's readiness on /healthz", "probes", production, (o) => { container(o, "balanced", "balanced").readinessProbe.httpGet.path = "/healthz"; }],
    ["a MySQL password in an env value", "secrets", production, (o) => { container(o, "balanced", "balanced").env = [{ name: "BALANCED_DB", value: "mysql://balanced:hunter2@db:3306/balanced" }]; }],
    ["a password-named env with a value", "secrets", production, (o) => { container(o, "balanced", "balanced").env = [{ name: "DB_PASSWORD", value: "hunter2" }]; }],
    ["env from secretKeyRef", "secrets", production, (o) => { container(o, "balanced", "balanced").env = [{ name: "X", valueFrom: { secretKeyRef: { name: "balanced-db", key: "password" } } }]; }],
    ["envFrom a Secret", "secrets", production, (o) => { container(o, "balanced", "balanced").envFrom.push({ secretRef: { name: "balanced-db" } }); }],
    ["a PEM key in an argument", "secrets", production, (o) => { container(o, "balance-gateway", "balance-gateway").args = ["-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----"]; }],
    ["a token flag with its value in args", "secrets", production, (o) => { container(o, "balance-gateway", "balance-gateway").args = ["--token", "abc.def.ghi"]; }],
    ["a JWT in an env value", "secrets", production, (o) => { container(o, "balanced", "balanced").env = [{ name: "X", value: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln" }]; }],
    ["a password in the ConfigMap's DB URL", "secrets", production, (o) => { configMap(o, "balanced-config").data.BALANCED_DB = "mysql://balanced:hunter2@db:3306/balanced"; }],
    ["no memory limit", "resources", production, (o) => delete container(o, "balanced", "balanced").resources.limits],
    ["no CPU request", "resources", production, (o) => delete container(o, "balance-gateway", "balance-gateway").resources.requests.cpu],
    ["an initContainer without resources", "resources", dev, (o) => delete podSpecOf(find(o, "Deployment", "balanced")).initContainers[0].resources],
    ["a writable root filesystem", "security", production, (o) => { container(o, "balanced", "balanced").securityContext.readOnlyRootFilesystem = false; }],
    ["an initContainer without a security context", "security", dev, (o) => delete podSpecOf(find(o, "Deployment", "balanced")).initContainers[0].securityContext],
    ["running as root", "security", production, (o) => { const p = podSpecOf(find(o, "Deployment", "balance-gateway")); p.securityContext.runAsUser = 0; delete container(o, "balance-gateway", "balance-gateway").securityContext.runAsUser; }],
    ["a capability kept", "security", production, (o) => { container(o, "balanced", "balanced").securityContext.capabilities = { drop: ["NET_RAW"] }; }],
    ["a Job container as root without resources", "resources", dev, (o) => { o.push({ apiVersion: "batch/v1", kind: "Job", metadata: { name: "x", namespace: "balanced-dev" }, spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "x", image: "busybox" }] } } } }); }],
    ["balanced's API open to every pod", "network", production, (o) => { find(o, "NetworkPolicy", "balanced").spec.ingress.push({ ports: [{ protocol: "TCP", port: 8080 }] }); }],
    ["balanced's API open to another namespace", "network", production, (o) => { find(o, "NetworkPolicy", "balanced").spec.ingress[0].from.push({ namespaceSelector: {}, podSelector: { matchLabels: { "app.kubernetes.io/name": "balance-gateway" } } }); }],
    ["balanced's API open to all ports of a rule", "network", production, (o) => { o.push({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "allow-all", namespace: "balanced" }, spec: { podSelector: {}, ingress: [{}] } }); }],
    ["Prometheus reaching the API port", "network", production, (o) => { find(o, "NetworkPolicy", "balanced").spec.ingress[1].ports.push({ protocol: "TCP", port: 8080 }); }],
    ["no NetworkPolicy for balanced", "network", production, (o) => { o.splice(o.indexOf(find(o, "NetworkPolicy", "balanced")), 1); }],
    ["balanced egress to any port", "network", production, (o) => { find(o, "NetworkPolicy", "balanced").spec.egress.push({ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }); }],
    ["balanced's Service as NodePort", "services", production, (o) => { find(o, "Service", "balanced").spec.type = "NodePort"; }],
    ["the headless Service without publishNotReadyAddresses", "services", production, (o) => { delete find(o, "Service", "balanced-replicas").spec.publishNotReadyAddresses; }],
    ["a headless Service of balanced the gateway does not use", "services", production, (o) => { find(o, "Service", "balanced").spec.clusterIP = "None"; find(o, "Service", "balanced").spec.publishNotReadyAddresses = true; }],
    ["publishNotReadyAddresses on the ClusterIP Service", "services", production, (o) => { find(o, "Service", "balanced").spec.publishNotReadyAddresses = true; }],
    ["a LoadBalancer in front of balanced", "services", production, (o) => { o.push({ apiVersion: "v1", kind: "Service", metadata: { name: "balanced-public", namespace: "balanced" }, spec: { type: "LoadBalancer", selector: { "app.kubernetes.io/name": "balanced" }, ports: [{ port: 80, targetPort: "http" }] } }); }],
    ["an HPA without the Pods metric", "autoscaling", production, (o) => { const h = find(o, "HorizontalPodAutoscaler", "balanced"); h.spec.metrics = h.spec.metrics.filter((m) => m.type !== "Pods"); }],
    ["an HPA with another metric name", "autoscaling", production, (o) => { find(o, "HorizontalPodAutoscaler", "balance-gateway").spec.metrics.find((m) => m.type === "Pods").pods.metric.name = "http_requests"; }],
    ["production with 2 replicas at least", "autoscaling", production, (o) => { find(o, "HorizontalPodAutoscaler", "balanced").spec.minReplicas = 2; }],
    ["a Deployment with replicas", "autoscaling", production, (o) => { find(o, "Deployment", "balanced").spec.replicas = 3; }],
    ["no PodDisruptionBudget", "disruption", production, (o) => { o.splice(o.indexOf(find(o, "PodDisruptionBudget", "balance-gateway")), 1); }],
    ["no zone spread", "topology", production, (o) => { const p = podSpecOf(find(o, "Deployment", "balanced")); p.topologySpreadConstraints = p.topologySpreadConstraints.filter((c) => !c.topologyKey.endsWith("/zone")); }],
    ["the zone spread only preferred in production", "topology", production, (o) => { podSpecOf(find(o, "Deployment", "balance-gateway")).topologySpreadConstraints[0].whenUnsatisfiable = "ScheduleAnyway"; }],
    ["a grace period shorter than the drain", "drain", production, (o) => { podSpecOf(find(o, "Deployment", "balance-gateway")).terminationGracePeriodSeconds = 30; }],
    ["the gateway's preStop an exec, not a sleep", "drain", production, (o) => { container(o, "balance-gateway", "balance-gateway").lifecycle = { preStop: { exec: { command: ["sleep", "10"] } } }; }],
    ["balanced without BALANCED_DRAIN_DELAY_MS", "drain", production, (o) => { delete configMap(o, "balanced-config").data.BALANCED_DRAIN_DELAY_MS; }],
    ["a preStop sleep on top of the drain delay", "drain", production, (o) => { container(o, "balanced", "balanced").lifecycle = { preStop: { sleep: { seconds: 10 } } }; }],
    ["a misspelt flag variable", "flags", production, (o) => { configMap(o, "balanced-config").data.BALANCED_DB_PASSWORDFILE = "/etc/balanced/db/password"; }],
    ["the admin listener on loopback", "flags", production, (o) => { configMap(o, "balance-gateway-config").data.BALANCE_GATEWAY_ADMIN_LISTEN = "127.0.0.1:9901"; }],
    ["the password file outside any mount", "flags", production, (o) => { configMap(o, "balanced-config").data.BALANCED_DB_PASSWORD_FILE = "/run/secrets/db"; }],
    ["the Redis password file outside any mount", "flags", production, (o) => { configMap(o, "balance-gateway-config").data.BALANCE_GATEWAY_RATE_LIMIT_STORE_PASSWORD_FILE = "/run/secrets/redis"; }],
    ["the MySQL tls-ca not in the Secret volume", "flags", production, (o) => { const s = podSpecOf(find(o, "Deployment", "balanced")).volumes.find((v) => v.name === "db-password").secret; s.items = s.items.filter((i) => i.key !== "ca.pem"); }],
    ["the TLS key mounted with subPath", "flags", production, (o) => { container(o, "balance-gateway", "balance-gateway").volumeMounts.find((m) => m.name === "tls").subPath = "tls.key"; }],
    ["the upstream not the balanced Service", "flags", production, (o) => { configMap(o, "balance-gateway-config").data.BALANCE_GATEWAY_UPSTREAM = "http://elsewhere:8080"; }],
    ["the upstream the ClusterIP Service balanced, not the headless one", "flags", production, (o) => { configMap(o, "balance-gateway-config").data.BALANCE_GATEWAY_UPSTREAM = "http://balanced:8080"; }],
    ["the upstream's Service made a ClusterIP one", "flags", production, (o) => { delete find(o, "Service", "balanced-replicas").spec.clusterIP; delete find(o, "Service", "balanced-replicas").spec.publishNotReadyAddresses; }],
    ["the upstream's headless Service without publishNotReadyAddresses", "flags", production, (o) => { delete find(o, "Service", "balanced-replicas").spec.publishNotReadyAddresses; }],
    ["an upstream resolve interval of 0 s", "flags", production, (o) => { configMap(o, "balance-gateway-config").data.BALANCE_GATEWAY_UPSTREAM_RESOLVE_S = "0"; }],
    ["no trust-network and no token checks", "flags", production, (o) => { delete configMap(o, "balanced-config").data.BALANCED_TRUST_NETWORK; }],
    ["a misspelt field", "schema", production, (o) => { const c = container(o, "balanced", "balanced"); c.readinesProbe = c.readinessProbe; }],
    ["a misspelt nested field", "schema", production, (o) => { container(o, "balanced", "balanced").securityContext.readOnlyRootFileSystem = true; }],
    ["a port that is not a number", "schema", production, (o) => { container(o, "balanced", "balanced").ports[0].containerPort = "8080"; }],
    ["a misspelt PodMonitor field", "schema", production, (o) => { find(o, "PodMonitor", "balanced").spec.podMetricEndpoints = []; }],
    ["a Secret in the production render", "operator-made secrets", production, (o) => { o.push({ apiVersion: "v1", kind: "Secret", metadata: { name: "balanced-db", namespace: "balanced" }, stringData: { password: "hunter2" } }); }],
    ["a PodMonitor on a port the pods lack", "monitoring", production, (o) => { find(o, "PodMonitor", "balanced").spec.podMetricsEndpoints[0].port = "metrics"; }],
    ["a renamed container", "monitoring", production, (o) => { container(o, "balance-gateway", "balance-gateway").name = "gateway"; }],
  ];
  // The unmodified renders pass every check (so each case below fails for its mutation).
  for (const [name, objects, profile] of [["self-test dev", dev, "dev"], ["self-test production", production, "production"]]) {
    const failing = (await runChecks(objects, profile)).filter(([, problems]) => problems.length);
    report(name, "unmodified render passes every check", failing.map(([check, problems]) => `${check}: ${problems[0]}`));
  }
  for (const [description, check, source, mutate] of cases) {
    const objects = copy(source);
    mutate(objects);
    const results = await runChecks(objects, source === dev ? "dev" : "production");
    const result = results.find(([name]) => name === check);
    const caught = result && result[1].length > 0;
    report("self-test", `${description} fails "${check}"`, caught ? [] : [`"${check}" passed a render with ${description}`]);
  }
}

// Every kustomization.yaml uses only what kustomize v2.0.3 (kubectl 1.14-1.20, Debian 12's
// kubernetes-client) understands, so that a v5-only run still catches what v2 would refuse:
// no `patches:`, `labels:`, `replacements`, `components`, and directories only in `bases:`
// (v2 reads files from `resources:`).
function checkKustomizations(files) {
  const allowed = new Set(["apiVersion", "kind", "namespace", "namePrefix", "nameSuffix", "bases", "resources",
    "patchesStrategicMerge", "patchesJson6902", "configMapGenerator", "secretGenerator", "generatorOptions",
    "images", "commonLabels", "commonAnnotations", "crds", "vars"]);
  for (const file of files) {
    const problems = [];
    let k;
    try {
      k = YAML.parse(readFileSync(file, "utf8")) || {};
    } catch (error) {
      report(file, "kustomize v2 fields", [error.message]);
      continue;
    }
    for (const key of Object.keys(k)) if (!allowed.has(key)) problems.push(`${key}: not known to kustomize v2.0.3`);
    for (const entry of k.resources || []) {
      const target = path.resolve(path.dirname(file), entry);
      if (!existsSync(target)) problems.push(`resources: ${entry} does not exist`);
      else if (!/\.ya?ml$/.test(entry)) problems.push(`resources: ${entry} is a directory; kustomize v2 wants it in bases:`);
    }
    for (const entry of k.bases || []) if (!existsSync(path.join(path.resolve(path.dirname(file), entry), "kustomization.yaml"))) problems.push(`bases: ${entry} has no kustomization.yaml`);
    for (const generator of [...(k.configMapGenerator || []), ...(k.secretGenerator || [])]) {
      for (const source of generator.files || []) {
        const from = String(source).split("=").pop();
        if (!existsSync(path.resolve(path.dirname(file), from))) problems.push(`${generator.name}: file ${from} does not exist`);
      }
      if (generator.env || generator.envs) problems.push(`${generator.name}: env files (env: v2, envs: v3+) differ between versions; use literals or files`);
    }
    report(path.relative(options.source, file), "kustomize v2 fields", problems);
  }
}

async function main() {
  const [command, ...rest] = argv;
  if (command === "kustomizations") {
    if (!rest.length) usage("kustomizations FILE...");
    checkKustomizations(rest);
  } else if (command === "check") {
    const [name, file, profile] = rest;
    if (!name || !file || !profiles[profile]) usage("check NAME FILE base|dev|production|job|foreign");
    const { objects, problems } = load(file);
    report(name, `parse (${objects.length} objects)`, objects.length ? problems : [...problems, "no objects"]);
    for (const [check, found] of await runChecks(objects, profile)) report(name, check, found);
  } else if (command === "self-test") {
    const [devFile, productionFile] = rest;
    if (!devFile || !productionFile) usage("self-test DEV_FILE PRODUCTION_FILE");
    await selfTest(devFile, productionFile);
  } else {
    usage("check | self-test");
  }
}

main().catch((error) => {
  console.error(`k8s_policy: ${error.stack || error}`);
  process.exit(2);
});
