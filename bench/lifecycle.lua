-- wrk script for bench/lifecycle_wrk.py: each wrk thread (one connection) walks whole lifecycles.
--
-- CS_MODE=countersign: submit by handshake (x-msft-approval-justification) -> 403 with
--   x-msft-approval-code; approve with the second admin's token -> 200; replay with
--   x-msft-approval-code -> 201. A step answering anything else counts as a failed lifecycle.
-- CS_MODE=bare: three POSTs of a small JSON body to the bare FastAPI app (bench/bare_app.py).
--
-- Environment: CS_MODE, CS_ADMIN1, CS_ADMIN2 (Authorization header values), CS_PER_THREAD
-- (lifecycles each thread runs before it stops), CS_RESULT (file done() writes the results to).
-- The latency of a lifecycle is measured here, from its first request to its last response.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cs_timespec;
int clock_gettime(int clock_id, cs_timespec *tp);
]]
local clock = ffi.new("cs_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local APPS = "/beta/deviceAppManagement/mobileApps"
local REQUESTS = "/beta/deviceManagement/operationApprovalRequests/"
local BARE = "/items"
-- base64("Benchmark change")
local JUSTIFICATION = "QmVuY2htYXJrIGNoYW5nZQ=="

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread has a Lua state of its own)
local mode, admin1, admin2, per_thread
local step, code, body, started = 0, nil, nil, 0
local serial = 0
completed, failed, latencies, failures = 0, 0, "", ""
first_start, last_end = -1, -1

function init(args)
  mode = os.getenv("CS_MODE") or "countersign"
  admin1 = os.getenv("CS_ADMIN1") or ""
  admin2 = os.getenv("CS_ADMIN2") or ""
  per_thread = tonumber(os.getenv("CS_PER_THREAD") or "10")
end

local function new_body()
  serial = serial + 1
  local name = string.format("App %d-%d", thread_id or 0, serial)
  if mode == "bare" then
    return string.format('{"displayName":"%s","publisher":"Bench","appUrl":"https://example.com"}', name)
  end
  return string.format(
    '{"@odata.type":"#microsoft.graph.webApp","displayName":"%s","publisher":"Bench",'
      .. '"appUrl":"https://example.com"}',
    name
  )
end

function request()
  if step == 0 then
    started = now_ms()
    if first_start < 0 then
      first_start = started
    end
    body = new_body()
  end
  if mode == "bare" then
    return wrk.format("POST", BARE, { ["Content-Type"] = "application/json" }, body)
  end
  if step == 0 then
    return wrk.format("POST", APPS, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = admin1,
      ["x-msft-approval-justification"] = JUSTIFICATION,
    }, body)
  elseif step == 1 then
    return wrk.format("POST", REQUESTS .. code .. "/approve", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = admin2,
    }, '{"justification":"ok"}')
  end
  return wrk.format("POST", APPS, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = admin1,
    ["x-msft-approval-code"] = code,
  }, body)
end

local function header(headers, name)
  for key, value in pairs(headers) do
    if string.lower(key) == name then
      return value
    end
  end
  return nil
end

local function finish(ok, status)
  if ok then
    completed = completed + 1
    latencies = latencies .. string.format("%.2f,", now_ms() - started)
  else
    failed = failed + 1
    if failed <= 5 then
      failures = failures .. string.format("step %d got %s;", step, tostring(status))
    end
  end
  step, code = 0, nil
  last_end = now_ms()
  if completed + failed >= per_thread then
    -- wrk itself runs until -d; the driver sends SIGINT once every thread left a marker.
    local marker = io.open(string.format("%s.thread%d", os.getenv("CS_RESULT"), thread_id), "w")
    if marker ~= nil then
      marker:close()
    end
    wrk.thread:stop()
  end
end

function response(status, headers, _)
  if mode == "bare" then
    if status ~= 200 then
      finish(false, status)
    elseif step == 2 then
      finish(true, status)
    else
      step = step + 1
    end
    return
  end
  if step == 0 then
    code = header(headers, "x-msft-approval-code")
    if status == 403 and code ~= nil then
      step = 1
    else
      finish(false, status)
    end
  elseif step == 1 then
    if status == 200 then
      step = 2
    else
      finish(false, status)
    end
  elseif status == 201 then
    finish(true, status)
  else
    finish(false, status)
  end
end

function done(summary, _, _)
  local out = assert(io.open(os.getenv("CS_RESULT"), "w"))
  out:write(string.format("duration_us %d\n", summary.duration))
  out:write(string.format("requests %d\n", summary.requests))
  local e = summary.errors
  out:write(string.format("socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
  out:write(string.format("non_2xx_3xx %d\n", e.status))
  for _, thread in ipairs(threads) do
    out:write(string.format("thread %d %d\n", thread:get("completed"), thread:get("failed")))
    out:write(string.format("window %.3f %.3f\n", thread:get("first_start"), thread:get("last_end")))
    out:write("latencies " .. thread:get("latencies") .. "\n")
    local why = thread:get("failures")
    if why ~= "" then
      out:write("failures " .. why .. "\n")
    end
  end
  out:close()
end
