--- udpxfer: reliable, fast file transfer over UDP on a LAN.
--
-- `udpxfer.get{...}` and `udpxfer.serve{...}` return pollable objects:
-- `step()` never blocks; `pollfd()`, `events()` and `timeout()` let any
-- event loop drive them; `run()` is the blocking convenience. Callbacks run
-- in plain Lua after the C step has returned, so they may `coroutine.yield()`.
local core = require "udpxfer.core"

local M = {
  DEFAULT_PORT = core.DEFAULT_PORT,
  DEFAULT_CHUNK = core.DEFAULT_CHUNK,
  core = core,
}

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
function M.targets(opts)
  local port = opts.port or M.DEFAULT_PORT
  local bcast = opts.broadcast
  if bcast == nil then bcast = core.broadcast_addresses(port) end
  local out, err = resolve_all(bcast or {}, port, {})
  if not out then return nil, err end
  return resolve_all(opts.servers or {}, port, out)
end

local function call(cb, ...)
  if cb then cb(...) end
end

-- Shared pollable surface.
local Pollable = {}
Pollable.__index = Pollable

--- File descriptor to wait on.
function Pollable:pollfd() return self.obj:pollfd() end
--- "r" or "rw": what to wait for on `pollfd()`.
function Pollable:events() return self.obj:events() end
--- Seconds until `step()` must run again even without input (nil: no deadline).
function Pollable:timeout() return self.obj:timeout() end

--- Block until `step()` reports completion (or for ever, for a server until
-- `close()`). Returns what `result()` returns.
function Pollable:run()
  while not self.closed and not self:step() do
    core.poll({ self:pollfd(), self:events() }, self:timeout())
  end
  return self:result()
end
Pollable.wait = Pollable.run

-- Client ---------------------------------------------------------------------

local Get = setmetatable({}, Pollable)
Get.__index = Get
Get.__close = function(self) self:close() end
Get.__gc = Get.__close

--- Start fetching a file. Options: `name` (required), `out` (directory, default
-- "."), `port`, `servers` (list of "host[:port]"), `broadcast` (list; nil for
-- the defaults, false for none), `chunk_size`, `timeout` (discovery, s),
-- `idle_timeout` (s), `sha256` (hex: the version to take), `window`,
-- `legacy` (speak the original tool's protocol: "get NAME", 1 KiB chunks),
-- `progress_interval` (s), and callbacks `on_offer`, `on_start`, `on_drop`,
-- `on_progress`, `on_done`, `on_error`.
-- Returns the transfer object, or nil, message, code.
function M.get(opts)
  assert(type(opts) == "table", "udpxfer.get expects a table of options")
  assert(type(opts.name) == "string", "udpxfer.get: name (string) is required")
  local targets, err = M.targets(opts)
  if not targets then return nil, err, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local obj, msg, code = core.client {
    name = opts.name, out = opts.out or ".", targets = targets,
    chunk_size = opts.chunk_size, discover_timeout = opts.timeout,
    idle_timeout = opts.idle_timeout, sha256 = opts.sha256, window = opts.window,
    legacy = opts.legacy,
  }
  if not obj then return nil, msg, code end
  return setmetatable({
    obj = obj, opts = opts, interval = opts.progress_interval or 0.1,
    last_progress = -math.huge,
  }, Get)
end

local client_handlers = {
  offer = function(self, ev) call(self.opts.on_offer, ev) end,
  start = function(self, ev) call(self.opts.on_start, ev) end,
  drop = function(self, ev) call(self.opts.on_drop, ev) end,
  done = function(self, ev)
    self.outcome = ev
    call(self.opts.on_progress, self.obj:stats())
    call(self.opts.on_done, ev, self.obj:stats())
  end,
  error = function(self, ev)
    self.outcome = ev
    call(self.opts.on_error, ev)
  end,
}

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true once the transfer has finished, successfully or not.
function Get:step()
  if self.outcome then return true end
  for _, ev in ipairs(self.obj:step()) do client_handlers[ev.type](self, ev) end
  if not self.outcome and self.opts.on_progress then
    local now = core.now()
    if now - self.last_progress >= self.interval then
      self.last_progress = now
      local st = self.obj:stats()
      if st.state == "transfer" then self.opts.on_progress(st) end
    end
  end
  return self.outcome ~= nil
end

--- The outcome: the "done" event table, or nil, message, code
-- (nil, "in progress", "busy" while running).
function Get:result()
  local o = self.outcome
  if not o then return nil, "in progress", "busy" end
  if o.type == "done" then return o end
  return nil, o.message, o.code
end

--- Counters: bytes, chunks, per-server figures (see README).
function Get:stats() return self.obj:stats() end

--- Stop; a partial file is removed. Safe to call more than once.
function Get:close()
  if self.closed then return end
  self.closed = true
  self.obj:close()
  if not self.outcome then self.outcome = { type = "error", message = "closed", code = "closed" } end
end

-- Server ---------------------------------------------------------------------

local Serve = setmetatable({}, Pollable)
Serve.__index = Serve
Serve.__close = function(self) self:close() end
Serve.__gc = Serve.__close

--- Serve every regular file under `dir`. Options: `dir` (default "./data"),
-- `port` (default 10526; 0 picks one), `bind` (default "0.0.0.0"),
-- `max_chunk`, `idle_timeout`, `max_sessions`, `legacy` (also answer the
-- original tool's "get NAME"; it cannot be protected against spoofing, so it
-- is off by default), `legacy_mbit` (its pacing, default 80), `corrupt_percent` (fault
-- injection for tests: damage that share of chunks after hashing), callbacks `on_request`,
-- `on_start`, `on_done`. Returns the server object, or nil, message, code.
function M.serve(opts)
  opts = opts or {}
  local obj, msg, code = core.server {
    dir = opts.dir or "./data", port = opts.port or M.DEFAULT_PORT, bind = opts.bind,
    max_chunk = opts.max_chunk, idle_timeout = opts.idle_timeout,
    max_sessions = opts.max_sessions, corrupt_percent = opts.corrupt_percent,
    legacy = opts.legacy, legacy_mbit = opts.legacy_mbit,
  }
  if not obj then return nil, msg, code end
  return setmetatable({ obj = obj, opts = opts }, Serve)
end

local server_handlers = { request = "on_request", start = "on_start", done = "on_done" }

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true only once the server is closed.
function Serve:step()
  if self.closed then return true end
  for _, ev in ipairs(self.obj:step()) do call(self.opts[server_handlers[ev.type]], ev) end
  return self.closed == true
end

--- The UDP port the server listens on.
function Serve:port() return self.obj:port() end
--- Counters: sessions, malformed datagrams, files hashed, packets.
function Serve:stats() return self.obj:stats() end
function Serve:result() return true end

--- Stop serving. Safe to call more than once (also from a callback).
function Serve:close()
  if self.closed then return end
  self.closed = true
  self.obj:close()
end

return M
