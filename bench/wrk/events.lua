-- wrk: one reader following the change feed: GET /events?after=N&limit=LIMIT, each request
-- after the `next` of the page before, from 0 again once caught up. Events are numbered
-- without gaps, so a page covered next - after of them. Env: LIMIT (default 1000), PATH_ONLY
-- (a fixed path instead, for a static baseline page of the same size).
local limit = tonumber(os.getenv("LIMIT") or "1000")
local fixed = os.getenv("PATH_ONLY")
if fixed == "" then fixed = nil end
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  after = 0
  events = 0
  pages = 0
  if fixed then events_per_page = limit end
end

function request()
  if fixed then return wrk.format("GET", fixed) end
  return wrk.format("GET", "/events?after=" .. after .. "&limit=" .. limit)
end

function response(status, headers, body)
  if status ~= 200 then return end
  pages = pages + 1
  if fixed then
    events = events + events_per_page
    return
  end
  -- The answer ends with "next":N}: look at its tail only.
  local next_id = tonumber(string.match(body:sub(-32), '"next":(%d+)}$'))
  if next_id == nil then return end
  if next_id > after then
    events = events + (next_id - after)
    after = next_id
  else
    after = 0  -- caught up: around again
  end
end

function done(summary, latency, requests)
  local total = 0
  local total_pages = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("events")
    total_pages = total_pages + thread:get("pages")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT events_per_s=%.0f pages_per_s=%.1f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f errors=%d\n",
    total / seconds, total_pages / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
    summary.errors.timeout))
end
