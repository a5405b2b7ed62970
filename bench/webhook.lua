-- wrk script: posts one real, correctly signed 14 KB issues.labeled payload with a fresh
-- X-GitHub-Delivery per request. Environment: PAYLOAD (file), SIGNATURE (sha256=...).

local file = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local body = file:read("*a")
file:close()
local signature = os.getenv("SIGNATURE")

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  prefix = string.format("%08x-%04x", math.random(0, 0x7fffffff), thread_no)
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/webhook", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "issues",
    ["X-GitHub-Delivery"] = string.format("%s-%012d", prefix, counter),
    ["X-Hub-Signature-256"] = signature,
  }, body)
end

function response(status, headers, body)
  if status ~= 202 then
    non_accepted = (non_accepted or 0) + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("requests: %d, errors: %d (non-2xx or socket)\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency p%s: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("throughput: %.0f req/s\n", summary.requests / (summary.duration / 1e6)))
end
