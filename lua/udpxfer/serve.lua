--- Serving a folder's files and listings: `udpxfer.serve{...}` (see `M.new`).
local base = require "udpxfer.base"
local options = require "udpxfer.options"

local core = base.core
local class, call, Pollable = base.class, base.call, base.Pollable
local O = options

local M = {}

local Serve = class(Pollable)
Serve.finishes = false

local SERVE = {
  dir = O.string, shares = O.names, port = O.integer(0, 65535), bind = O.string, interface = O.string,
  max_chunk = O.integer(core.MIN_CHUNK, core.MAX_CHUNK), idle_timeout = O.seconds,
  max_sessions = O.integer(1, 65536), host_sessions = O.integer(1, 65536), host_requests = O.number(1, 1e9),
  host_rate = O.rate, max_rate = O.rate, work_rate = O.rate, legacy = O.boolean,
  legacy_mbit = O.number(0.001, 1e6), corrupt_percent = O.number(0, 100), lie_percent = O.number(0, 100),
  async_hash_min = O.bytes, key = O.string, on_request = O.callback, on_start = O.callback,
  on_done = O.callback, on_unauthentic = O.callback,
}

--- Serve every regular file under `dir` (the tree "."), and under each of
-- `shares` ({ NAME = PATH }: the tree NAME, its files "NAME/..."), and
-- listings of their folders. Options: `dir` (default "./data"),
-- `port` (default 10526; 0 picks one), `bind` (default "::", every address,
-- IPv6 and IPv4; an IPv4 address also hears its subnet's broadcasts),
-- `interface` (a network device name: only its traffic),
-- `max_chunk`, `idle_timeout`, `max_sessions` (default 256), `host_sessions`
-- (how many of them one client host may hold, default a quarter),
-- `host_requests` (requests per second one host may make, default 10000),
-- `host_rate` and `max_rate` (bytes per second to one host and in all,
-- default no cap), `work_rate` (work units per second answering requests
-- may take in all, a byte hashed being one; default 512 MiB: about half a
-- core; half of it for one client host that echoed a cookie, a sixteenth
-- for all others together and as much for their trees), `legacy` (also answer the
-- original tool's "get NAME"; it cannot be protected against spoofing, so it
-- is off by default), `legacy_mbit` (its pacing, default 80), `corrupt_percent` (fault
-- injection for tests: damage that share of chunks after hashing), `lie_percent` (the
-- same before hashing: the chunk hashes match the wrong bytes), `async_hash_min`
-- (files this large, default 64 MiB, are hashed off the loop; requests for
-- one meanwhile get "preparing"; once served, such a file is hashed again,
-- with its tree, when a writer closes it, moves it in or touches it, before
-- anyone asks), callbacks `on_request` (`status` "ok",
-- "notfound", "refused", "preparing" or "io"), `on_start`, `on_done`,
-- `on_unauthentic` (with a key: `{client=, sealed=, keyless=}`, datagrams
-- from that host sealed under another key or not sealed, counted since the
-- last report; at most once a minute per host and 16 times in all).
-- Returns the server object, or nil, message, code.
function M.new(opts)
  options.check("udpxfer.serve", opts or {}, SERVE)
  opts = opts or {}
  local obj, msg, code = core.server {
    dir = opts.dir or "./data", shares = opts.shares, port = opts.port or core.DEFAULT_PORT, bind = opts.bind,
    interface = opts.interface,
    max_chunk = opts.max_chunk, idle_timeout = opts.idle_timeout,
    max_sessions = opts.max_sessions, host_sessions = opts.host_sessions, host_requests = opts.host_requests,
    host_rate = opts.host_rate, max_rate = opts.max_rate, work_rate = opts.work_rate, corrupt_percent = opts.corrupt_percent, lie_percent = opts.lie_percent,
    legacy = opts.legacy, legacy_mbit = opts.legacy_mbit, async_hash_min = opts.async_hash_min, key = opts.key,
  }
  if not obj then return nil, msg, code end
  return setmetatable({ obj = obj, opts = opts }, Serve)
end

local server_handlers = { request = "on_request", start = "on_start", done = "on_done",
  unauthentic = "on_unauthentic" }

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true only once the server is closed.
function Serve:step()
  if self.closed then return true end
  for _, ev in ipairs(self.obj:step()) do call(self.opts[server_handlers[ev.type]], ev) end
  return self.closed == true
end

--- The UDP port the server listens on.
function Serve:port() return self.obj:port() end
function Serve:result() return true end

--- Stop serving. Safe to call more than once (also from a callback).
function Serve:close()
  if self.closed then return end
  base.forget(self.obj:pollfd())
  self.closed = true
  self.obj:close()
end

return M
