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
-- `opts.broadcast` is nil and no server is named, none when it is `false`
-- or empty) plus `opts.servers`. The second result is how many of them
-- are broadcast addresses; the third, unicast, is true when broadcast is
-- off by name (`false` or empty): then only answers from the servers asked
-- count, and discovery ends once they all answered (a server named alone
-- may answer from another of its addresses).
function M.targets(opts)
  local port = opts.port or M.DEFAULT_PORT
  local bcast = opts.broadcast
  -- named servers alone are asked alone: a broadcast nobody asked for would
  -- reach every host of every attached network
  if bcast == nil and not (opts.servers and #opts.servers > 0) then bcast = core.broadcast_addresses(port) end
  local out, err = resolve_all(bcast or {}, port, {})
  if not out then return nil, err end
  local nbcast = #out
  out, err = resolve_all(opts.servers or {}, port, out)
  if not out then return nil, err end
  return out, nbcast, opts.broadcast == false or (type(opts.broadcast) == "table" and #opts.broadcast == 0)
end

local O = require "udpxfer.options"

--- The options every request to the servers takes (targets, discovery,
-- key, chunk size) and the outcome callbacks.
M.ASK = {
  port = O.integer(1, 65535), servers = O.strings, broadcast = O.either(O.strings, O.no),
  timeout = O.seconds, key = O.string, chunk_size = O.integer(core.MIN_CHUNK, core.MAX_CHUNK),
  on_done = O.callback, on_error = O.callback,
}
--- With progress reports (M.progress).
M.PROGRESS = { progress_interval = O.interval, on_progress = O.callback }

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

--- A fetch whose whole file fails its SHA-256 although every chunk passed
-- was fed wrong bytes hashed with them (a server that lies, or, keyless,
-- chunks forged under a server's address): the hash beside a chunk cannot
-- say by whom. It is tried once more with every chunk checked against its
-- leaf of the offered chunk-hash tree, so whoever sends a wrong chunk is
-- caught at that chunk. Is a fetch that ended with event EV (VERIFIED:
-- already checked so) to be tried so?
function M.retry_verified(ev, verified)
  return ev.code == "corrupt" and not verified
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

--- Every kind of object finishes but a server, which runs until closed.
Pollable.finishes = true

-- SIGINT or SIGTERM came while run() waited: every object stops as abort()
-- stops it (partial files stay to be resumed, servers are told), and the
-- process ends as the signal would have ended it.
local function interrupted(objs, sig)
  local cut = false -- a transfer left unfinished is said so; a server just stops
  for _, o in ipairs(objs) do
    cut = cut or (o.finishes and not o.outcome)
    o:abort()
  end
  core.release_signals()
  if cut then
    io.stderr:write(sig == 2 and "udpxfer: interrupted\n" or "udpxfer: terminated\n")
    io.stderr:flush()
  end
  core.die(sig)
end

local function drive(objs)
  local waiting = {}
  for _, o in ipairs(objs) do waiting[o] = o.finishes or nil end
  local forever = next(waiting) == nil
  while true do
    local fds, timeout, open = {}, nil, false
    for _, o in ipairs(objs) do
      if not o.closed and (waiting[o] or not o.finishes) then
        if o:step() then waiting[o] = nil end
        if not o.closed then
          open = true
          fds[#fds + 1], fds[#fds + 2] = o:pollfd(), o:events()
          local t = o:timeout()
          if t and (not timeout or t < timeout) then timeout = t end
        end
      end
    end
    if (forever and not open) or (not forever and next(waiting) == nil) then return end
    local sig = core.signaled()
    if sig then interrupted(objs, sig) end
    local ok, msg = core.poll(fds, timeout)
    if not ok then error("udpxfer.run: " .. tostring(msg), 0) end
  end
end

--- Drive any set of pollable objects (fetches, servers, syncs, listings,
-- streams) in one loop until every one of them that finishes has finished
-- (a server never does: it is stepped meanwhile and left running; given
-- only servers, it runs until they are closed, e.g. from a callback).
-- SIGINT and SIGTERM while it waits end the objects as `abort()` does
-- (partial files stay to be resumed, servers are told), print one line if
-- a transfer was cut short, and end the process as the signal would (exit
-- status 130 or 143).
-- Returns the result of each object that finishes, in the order given
-- (true when given only servers), or, if one failed, the first failure's
-- nil, message, code.
function M.run(...)
  local objs = { ... }
  for i, o in ipairs(objs) do
    if type(o) ~= "table" or type(o.step) ~= "function" then
      error(("udpxfer.run: argument %d is not a udpxfer object"):format(i), 2)
    end
  end
  core.catch_signals()
  local ok, err = pcall(drive, objs)
  core.release_signals()
  if not ok then error(err, 0) end
  local out = {}
  for _, o in ipairs(objs) do
    if o.finishes then
      local res, msg, code = o:result()
      if not res then return nil, msg, code end
      out[#out + 1] = res
    end
  end
  if #out == 0 then return true end
  return table.unpack(out)
end

--- Block until `step()` reports completion (or for ever, for a server until
-- `close()`), as `udpxfer.run(self)`. Returns what `result()` returns.
function Pollable:run() return M.run(self) end

return M
