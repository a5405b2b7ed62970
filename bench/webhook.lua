-- wrk script: posts one real, correctly signed 14 KB issues.labeled payload with a fresh
-- X-GitHub-Delivery per request. Environment: PAYLOAD (file), SIGNATURE (sha256=...),
-- WEBHOOK_PATH (default /webhook). Prints the throughput, latency percentiles and how many
-- answers were 2xx (what a door must have stored).

local file = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local body = file:read("*a")
file:close()
local signature = os.getenv("SIGNATURE")
local path = os.getenv("WEBHOOK_PATH") or "/webhook"

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  answered_2xx = 0
  prefix = string.format("%08x-%04x", math.random(0, 0x7fffffff), thread_no)
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "issues",
    ["X-GitHub-Delivery"] = string.format("%s-%012d", prefix, counter),
    ["X-Hub-Signature-256"] = signature,
  }, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    answered_2xx = answered_2xx + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("requests: %d, errors: %d (non-2xx or socket)\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency p%s: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  local ok = 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("answered_2xx")
  end
  io.write(string.format("answered 2xx: %d\n", ok))
  io.write(string.format("throughput: %.0f req/s\n", summary.requests / (summary.duration / 1e6)))
end
