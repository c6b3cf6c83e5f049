--- What the udpxfer modules share: the targets of a request, chunk
-- sizes, and the pollable object every transfer is (step, pollfd, events,
-- timeout, run, result, close).
local core = require "udpxfer.core"

local M = { core = core, DEFAULT_PORT = core.DEFAULT_PORT, DEFAULT_CHUNK = core.DEFAULT_CHUNK }

local function resolve_all(list, port, into)
  for _, spec in ipairs(list) do
    local a, err = core.resolve(spec, port)
    if not a then return nil, ("%s: %s"):format(spec, err) end
    into[#into + 1] = a
  end
  return into
end

--- Where discovery requests go: the broadcast addresses (the defaults when
-- `opts.broadcast` is nil, none when it is `false` or empty) plus `opts.servers`.
-- The second result is how many of them are broadcast addresses.
function M.targets(opts)
  local port = opts.port or M.DEFAULT_PORT
  local bcast = opts.broadcast
  if bcast == nil then bcast = core.broadcast_addresses(port) end
  local out, err = resolve_all(bcast or {}, port, {})
  if not out then return nil, err end
  local nbcast = #out
  out, err = resolve_all(opts.servers or {}, port, out)
  if not out then return nil, err end
  return out, nbcast
end

local AUTO_CHUNK_MAX = 16384 -- beyond this, a lost datagram costs more than the headers save

--- The chunk size for these targets ("ip:port" strings): the largest whose
-- DATA datagram, with room for the authentication tag, fits the smallest
-- route MTU among them without IP fragmentation (1424 on Ethernet, 1408 with a key, 16 KiB on
-- loopback or jumbo frames), in steps of 16; `DEFAULT_CHUNK` when no route
-- is known.
function M.chunk_size_for(targets, keyed)
  local best
  local overhead = keyed and core.SEALED_DATA_OVERHEAD or core.DATA_OVERHEAD
  for _, t in ipairs(targets) do
    local mtu = core.path_mtu(t)
    if mtu then
      local ip = t:find("^%[") and 40 or 20
      local c = (mtu - ip - 8 - overhead) // 16 * 16
      best = math.min(best or c, c)
    end
  end
  if not best then return keyed and M.DEFAULT_CHUNK - 16 or M.DEFAULT_CHUNK end
  return math.max(64, math.min(best, AUTO_CHUNK_MAX))
end

--- Call CB with the arguments, if there is one.
function M.call(cb, ...)
  if cb then cb(...) end
end
local call = M.call

--- The pollable surface every transfer object shares.
local Pollable = {}
Pollable.__index = Pollable
M.Pollable = Pollable

--- A class inheriting from PARENT whose instances close on __gc and __close.
function M.class(parent)
  local c = setmetatable({}, parent)
  c.__index = c
  c.__close = function(self) self:close() end
  c.__gc = c.__close
  return c
end

--- File descriptor to wait on.
function Pollable:pollfd() return self.obj:pollfd() end
--- What to wait for on `pollfd()`: always "r" (it is an epoll set, readable
-- when anything in it is ready).
function Pollable:events() return self.obj:events() end
--- Seconds until `step()` must run again even without input (nil: no deadline).
function Pollable:timeout() return self.obj:timeout() end

--- Counters. A fetch: `state` ("discover", "transfer", "committing", "done",
-- "failed"), `size`, `chunks`, `have`, `bytes`, `dups`, `bad`, `elapsed`,
-- packet counts, the output file's `readback`/`evicted`/`hash_waits`, and
-- per server (`servers`) its share and rate. A server: `sessions`,
-- `malformed`, hash-cache counters, `preparing`, packet and byte counts.
function Pollable:stats() return self.obj:stats() end

--- The outcome: the "done" event table, or nil, message, code
-- (nil, "in progress", "pending" while running).
function Pollable:result()
  local o = self.outcome
  if not o then return nil, "in progress", "pending" end
  if o.type == "done" then return o end
  return nil, o.message, o.code
end

--- Stop; what has not finished ends with code "closed" (a partial file is
-- removed; a stream's receiver reports it broken). Safe to call more than once.
function Pollable:close()
  if self.closed then return end
  M.forget(self.obj:pollfd())
  self.closed = true
  self.obj:close()
  if not self.outcome then self.outcome = { type = "error", message = "closed", code = "closed" } end
end

--- Before an object closes its descriptor: a loop that polled it (cqueues
-- keeps a descriptor it was asked to watch) is told to forget it, as
-- cqueues wants of anything closed after a poll.
function M.forget(fd)
  local cq = package.loaded.cqueues
  if fd and cq and cq.cancel then cq.cancel(fd) end
end

--- Stop because of a signal or a user: as close(), the outcome "closed".
function Pollable:abort() self:close() end

--- on_progress(stats) at most every opts.progress_interval seconds (0.1),
-- while KEEP(stats) holds.
function M.progress(self, keep)
  local cb = self.opts.on_progress
  if self.outcome or not cb then return end
  local now = core.now()
  if now - (self.last_progress or -math.huge) < (self.opts.progress_interval or 0.1) then return end
  self.last_progress = now
  local st = self:stats()
  if not keep or keep(st) then cb(st) end
end

--- Block until `step()` reports completion (or for ever, for a server until
-- `close()`). Returns what `result()` returns.
function Pollable:run()
  while not self.closed and not self:step() do
    core.poll({ self:pollfd(), self:events() }, self:timeout())
  end
  return self:result()
end
Pollable.wait = Pollable.run

return M
