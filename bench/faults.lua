-- wrk script of the fault run (bench/faults.py): every request appends a unique value to one
-- of the sessions (round robin over the Cookie lines of $FAULTS_COOKIES), and every answer
-- is counted by status in quarter-second buckets; done() writes the buckets and the values
-- answered 200 to $FAULTS_OUT, one per line ("B <bucket> <status> <count>", "A <value>").
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } faults_timeval;
  int gettimeofday(faults_timeval *tv, void *tz);
]]
local tv = ffi.new("faults_timeval")

local function quarter()
  ffi.C.gettimeofday(tv, nil)
  return math.floor((tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6) * 4)
end

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  threads[#threads + 1] = thread
end

local cookies = {}
local n = 0
-- Flat tables: wrk's thread:get() crashes copying a table of tables.
counts = {}
acked = {}

function init(args)
  for line in io.lines(os.getenv("FAULTS_COOKIES")) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
  if #cookies == 0 then error("no cookies in $FAULTS_COOKIES") end
end

function request()
  n = n + 1
  local cookie = cookies[n % #cookies + 1]
  return wrk.format("GET", "/append?v=" .. id .. "-" .. n, { ["Cookie"] = cookie })
end

function response(status, headers, body)
  local key = tostring(status)
  if status == 503 and headers["Retry-After"] == nil then key = "503-no-retry-after" end
  local bucket = quarter() .. " " .. key
  counts[bucket] = (counts[bucket] or 0) + 1
  if status == 200 then acked[#acked + 1] = body end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("FAULTS_OUT"), "w"))
  for _, thread in ipairs(threads) do
    for bucket, count in pairs(thread:get("counts")) do
      out:write("B ", bucket, " ", count, "\n")
    end
    for _, value in ipairs(thread:get("acked")) do out:write("A ", value, "\n") end
  end
  out:write("L ", latency.max, "\n")
  out:write("T ", summary.errors.timeout, "\n")
  out:close()
end
