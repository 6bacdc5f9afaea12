-- wrk: POST /accounts/transactions/batch with BATCH transfers of amount 1 between the
-- accounts acc0..acc(ACCOUNTS-1), every transactionId unique in the run (TAG, thread,
-- request, item). Env: BATCH (default 1000), ACCOUNTS (default 10), TAG (default "b").
local batch = tonumber(os.getenv("BATCH") or "1000")
local accounts = tonumber(os.getenv("ACCOUNTS") or "10")
local tag = os.getenv("TAG") or "b"
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local parts = {}
  local prefix = tag .. "-" .. thread_id .. "-" .. counter .. "-"
  for i = 0, batch - 1 do
    local from = (counter + i) % accounts
    local to = (from + 1) % accounts
    parts[#parts + 1] = '{"transactionId":"' .. prefix .. i .. '","sourceAccountNumber":"acc' .. from ..
        '","destinationAccountNumber":"acc' .. to .. '","amount":1}'
  end
  local body = '{"transfers":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/accounts/transactions/batch", {["Content-Type"] = "application/json"}, body)
end

local committed = 0
local non_ok = 0
function response(status, headers, body)
  if status ~= 200 then non_ok = non_ok + 1 end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT requests_per_s=%.1f transfers_per_s=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f errors=%d\n",
    summary.requests / seconds, summary.requests * batch / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout))
end
