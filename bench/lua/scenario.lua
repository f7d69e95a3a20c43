-- wrk script for every bench scenario (bench/run.py passes the arguments after "--").
--
--   mode=create  POST /v1/payments, a fresh Idempotency-Key per request (the payout's
--                reference is the key too, so the database can be checked for doubles);
--                the bearer token rotates over the lines of tokens=FILE
--   mode=echo    the same requests to the bare baseline endpoint POST /bench/echo
--   mode=replay  POST /v1/payments again with keys and bodies that already succeeded
--                (lines "token<TAB>key<TAB>body" of requests=FILE): every answer must be
--                201 with Idempotent-Replayed: true
--   mode=get     GET /v1/payments/{id} (lines "token<TAB>id" of requests=FILE)
--   mode=list    GET /v1/payments?limit=20 (tokens=FILE)
--   mode=token   POST /oauth/token client_credentials (lines "Basic ..." of requests=FILE)
--
-- done() prints one line "BENCH_RESULT {json}" with the counts and latency percentiles.

local threads = {}
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
  table.insert(threads, thread)
end

local function read_lines(path)
  local lines = {}
  local file = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in file:lines() do
    if line ~= "" then table.insert(lines, line) end
  end
  file:close()
  assert(#lines > 0, "no lines in " .. path)
  return lines
end

local function split_tabs(line)
  local fields = {}
  for field in string.gmatch(line, "[^\t]+") do table.insert(fields, field) end
  return fields
end

local mode, prefix, amount, iban = nil, "k", "10000", "PK36SCBL0000001123456702"
local tokens, items = nil, nil
local expected = 200
counter = 0
s2xx, s3xx, s4xx, s5xx, s409, s429, unexpected, replay_missing = 0, 0, 0, 0, 0, 0, 0, 0
first_bad = ""

function init(args)
  local options = {}
  for _, arg in ipairs(args) do
    local key, value = string.match(arg, "^([%w_]+)=(.*)$")
    if key then options[key] = value end
  end
  mode = assert(options.mode, "mode= is required")
  prefix = (options.prefix or "k") .. "-" .. tostring(tid or 0) .. "-"
  amount = options.amount or amount
  if options.tokens then tokens = read_lines(options.tokens) end
  if options.requests then
    items = {}
    for _, line in ipairs(read_lines(options.requests)) do table.insert(items, split_tabs(line)) end
  end
  if mode == "create" or mode == "replay" then expected = 201 end
  -- Threads start at different places of the lists, so they do not move in step.
  counter = ((tid or 1) - 1) * 7919
end

local function payout_body(reference)
  return '{"amount":' .. amount .. ',"currency":"PKR","creditor":{"iban":"' .. iban ..
    '","name":"Ayesha Khan"},"reference":"' .. reference .. '"}'
end

local function pick(list)
  return list[(counter % #list) + 1]
end

function request()
  counter = counter + 1
  if mode == "create" or mode == "echo" then
    local key = prefix .. counter
    local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = key,
      ["Authorization"] = "Bearer " .. pick(tokens),
    }
    local path = mode == "create" and "/v1/payments" or "/bench/echo"
    return wrk.format("POST", path, headers, payout_body(key))
  elseif mode == "replay" then
    local item = pick(items)
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. item[1],
      ["Idempotency-Key"] = item[2],
    }
    return wrk.format("POST", "/v1/payments", headers, item[3])
  elseif mode == "get" then
    local item = pick(items)
    return wrk.format("GET", "/v1/payments/" .. item[2], { ["Authorization"] = "Bearer " .. item[1] })
  elseif mode == "list" then
    return wrk.format("GET", "/v1/payments?limit=20", { ["Authorization"] = "Bearer " .. pick(tokens) })
  elseif mode == "token" then
    local item = pick(items)
    local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = item[1],
    }
    return wrk.format("POST", "/oauth/token", headers, "grant_type=client_credentials")
  end
  error("unknown mode " .. tostring(mode))
end

function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 300 then s3xx = s3xx + 1
  else s2xx = s2xx + 1 end
  if status == 409 then s409 = s409 + 1 end
  if status == 429 then s429 = s429 + 1 end
  if status ~= expected then
    unexpected = unexpected + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  elseif mode == "replay" then
    local flag = headers["idempotent-replayed"] or headers["Idempotent-Replayed"]
    if flag ~= "true" then replay_missing = replay_missing + 1 end
  end
end

local function json_string(value)
  value = string.gsub(value, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. value .. '"'
end

function done(summary, latency, requests)
  local totals = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, s409 = 0, s429 = 0,
                   unexpected = 0, replay_missing = 0 }
  local bad = ""
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + (thread:get(name) or 0) end
    if bad == "" then bad = thread:get("first_bad") or "" end
  end
  local e = summary.errors
  io.write("BENCH_RESULT {",
    '"requests":', summary.requests, ",",
    '"duration_us":', summary.duration, ",",
    '"bytes":', summary.bytes, ",",
    '"errors":{"connect":', e.connect, ',"read":', e.read, ',"write":', e.write,
    ',"status":', e.status, ',"timeout":', e.timeout, "},",
    '"latency_us":{"p50":', latency:percentile(50), ',"p95":', latency:percentile(95),
    ',"p99":', latency:percentile(99), ',"max":', latency.max, ',"mean":', latency.mean, "},",
    '"status":{"2xx":', totals.s2xx, ',"3xx":', totals.s3xx, ',"4xx":', totals.s4xx,
    ',"5xx":', totals.s5xx, ',"409":', totals.s409, ',"429":', totals.s429, "},",
    '"unexpected":', totals.unexpected, ",",
    '"replay_header_missing":', totals.replay_missing, ",",
    '"first_bad":', json_string(bad),
    "}\n")
end
