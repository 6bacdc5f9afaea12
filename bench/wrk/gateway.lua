-- wrk script of bench/gateway.sh: every request is made by one of N principals chosen at
-- random, and carries that principal's own bearer token.
--
--   wrk -t1 -c64 -d10s --latency -s bench/wrk/gateway.lua URL -- TOKENS MODE [ID_PREFIX]
--
-- TOKENS is a file of N JWTs, one a line: line i+1 is principal p<i>, whose account is
-- a<i> (what `balancectl token --count N --sub-prefix p` prints); or `none:N` for N
-- accounts and no Authorization header (balanced itself, bench/run.sh). MODE is
--   read      GET /accounts/a<i>/balance
--   transfer  POST /accounts/transactions from a<i> to a<(i+1) % N>, amount 1, with
--             transactionId ID_PREFIX<thread>-<counter> (unique if ID_PREFIX is unique
--             per run of wrk)
--   deposit, withdrawal
--             POST /accounts/a<i>/deposits (or /withdrawals), amount 1, ids as above
--   holdcapture
--             odd requests POST /holds from a<i> to a<(i+1) % N>, amount 1; even ones
--             POST /holds/<hold>/capture of the hold placed 2 * LAG requests earlier
--             by this thread (answered long since; before there is one, a hold): pairs
--             per second are half the requests'
--   refund    POST /transactions/orig-a<i>/refunds, amount 1 (bench/ledger.sh makes
--             each orig-a<i>, a large transfer from a<(i+1) % N> to a<i>)
-- The random sequence has a fixed seed per wrk thread, so every target gets the same
-- principals in the same order.
--
-- done() prints one line (times in ms; errors = non-2xx/3xx responses + socket errors):
--   RESULT rps=... p50_ms=... p99_ms=... p999_ms=... max_ms=... errors=... non2xx=... socket=... requests=...

local threads = {}

function setup(thread)
  thread:set("id", #threads)   -- a global `id` in the thread's own Lua state
  table.insert(threads, thread)
end

local n, mode
local reads = {}    -- read: the whole request of principal i, prebuilt
local heads = {}    -- transfer: request line and headers of principal i, up to Content-Length
local tails = {}    -- transfer: the body after the transactionId
local id_head       -- transfer: the body up to the counter
local counter = 0
local host_line     -- "Host: ...\r\n" and the Authorization header, when none:N, for holdcapture
local hold_prefix   -- holdcapture: the ids' prefix
local LAG = 256     -- holdcapture: a capture names the hold of 2 * LAG requests before

function init(args)
  -- wrk passes the URL as args[0], then what follows "--".
  local path, prefix = args[1], args[3] or "wrk-"
  mode = args[2]
  assert(path and (mode == "read" or mode == "transfer" or mode == "deposit" or mode == "withdrawal"
      or mode == "holdcapture" or mode == "refund"),
    "usage: wrk ... -s gateway.lua URL -- TOKENS|none:N read|transfer|deposit|withdrawal|holdcapture|refund [ID_PREFIX]")
  local tokens = {}
  local anonymous = path:match("^none:(%d+)$")
  if anonymous then
    n = tonumber(anonymous)
  else
    for line in assert(io.open(path)):lines() do
      if line ~= "" then tokens[#tokens + 1] = line end
    end
    n = #tokens
  end
  assert(n > 0, "no tokens in " .. path)
  local host = wrk.host .. ":" .. wrk.port
  for i = 1, n do
    local account = "a" .. (i - 1)
    local auth = anonymous and "" or "Authorization: Bearer " .. tokens[i] .. "\r\n"
    reads[i] = "GET /accounts/" .. account .. "/balance HTTP/1.1\r\nHost: " .. host .. "\r\n"
      .. auth .. "\r\n"
    if mode == "holdcapture" then
      heads[i] = "POST /holds HTTP/1.1\r\nHost: " .. host .. "\r\n" .. auth
        .. "Content-Type: application/json\r\nContent-Length: "
      tails[i] = '","sourceAccountNumber":"' .. account .. '","destinationAccountNumber":"a'
        .. (i % n) .. '","amount":1}'
      host_line = "Host: " .. host .. "\r\n" .. auth
    elseif mode == "refund" then
      heads[i] = "POST /transactions/orig-" .. account .. "/refunds HTTP/1.1\r\nHost: " .. host .. "\r\n"
        .. auth .. "Content-Type: application/json\r\nContent-Length: "
      tails[i] = '","amount":1}'
    elseif mode == "deposit" or mode == "withdrawal" then
      heads[i] = "POST /accounts/" .. account .. "/" .. mode .. "s HTTP/1.1\r\nHost: " .. host .. "\r\n"
        .. auth .. "Content-Type: application/json\r\nContent-Length: "
      tails[i] = '","amount":1}'
    else
      heads[i] = "POST /accounts/transactions HTTP/1.1\r\nHost: " .. host .. "\r\n" .. auth
        .. "Content-Type: application/json\r\nContent-Length: "
      tails[i] = '","sourceAccountNumber":"' .. account .. '","destinationAccountNumber":"a'
        .. (i % n) .. '","amount":1}'
    end
  end
  local id_field = mode == "holdcapture" and "holdId" or mode == "refund" and "refundId" or "transactionId"
  id_head = '{"' .. id_field .. '":"' .. prefix .. id .. "-"
  hold_prefix = prefix .. id .. "-"
  math.randomseed(1 + id)
end

function request()
  local i = math.random(n)
  if mode == "read" then return reads[i] end
  counter = counter + 1
  -- wrk calls request() once before sending anything: the hold of counter 1 is never
  -- sent, so the first capture names the hold of counter 3.
  if mode == "holdcapture" and counter % 2 == 0 and counter > 2 * LAG + 2 then
    local hold = hold_prefix .. (counter - 1 - 2 * LAG)
    local body = '{"captureId":"' .. hold .. '-c"}'
    return "POST /holds/" .. hold .. "/capture HTTP/1.1\r\n" .. host_line
      .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  end
  local body = id_head .. counter .. tails[i]
  return heads[i] .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f errors=%d non2xx=%d socket=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    e.status + socket, e.status, socket, summary.requests))
end
