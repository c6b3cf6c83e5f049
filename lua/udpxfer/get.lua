--- Fetching one file: `udpxfer.get{...}` (see `M.new`).
local base = require "udpxfer.base"
local options = require "udpxfer.options"

local core = base.core
local class, call, progress, Pollable = base.class, base.call, base.progress, base.Pollable
local O = options

local M = {}

local GET = options.merge(base.ASK, base.PROGRESS, {
  name = O.string, out = O.string, as = O.string, root = O.either(O.string, O.userdata), path = O.string,
  memory = O.boolean, basis = O.string, durable = O.boolean, resume = O.boolean, force = O.boolean,
  idle_timeout = O.seconds, sha256 = O.sha256, window = O.integer(1, 65536), limit_rate = O.rate,
  legacy = O.boolean, ignore_servers = O.strings, verify = O.boolean, link = O.userdata,
  on_offer = O.callback, on_preparing = O.callback, on_start = O.callback, on_drop = O.callback,
  on_retry = O.callback,
})

local Get = class(Pollable)

--- Start fetching a file. Options (an unknown name or a wrong type raises):
-- `name` (required: the file's name on the servers), where it goes: `out`
-- (a folder, default ".") and `as` (the file name there, default NAME's
-- last part), or `root` (a folder path or `udpxfer.core.dir` object) and
-- `path` (relative to it), or `memory = true` (kept for `result().data`,
-- up to 256 MiB); `basis` (a local file whose matching chunks are copied
-- instead of fetched), `durable` (fsync before the rename, default true);
-- discovery: `port`, `servers` (list of "host[:port]"), `broadcast` (list;
-- false for none; nil for every interface's, or none when `servers` is given), `timeout` (s); `chunk_size`
-- (default `chunk_size_for(targets)`), `idle_timeout` (s), `sha256` (hex:
-- the version to take), `window` (chunks in flight per server),
-- `limit_rate` (bytes/s from all servers together), `legacy` (speak the
-- original tool's protocol: "get NAME", 1 KiB chunks), `ignore_servers`
-- (list of "ip:port"), `verify` (check every chunk against the tree from
-- the start: see below), `key` (the shared key), `link` (a
-- `udpxfer.core.link()` shared with other fetches; its owner steps it),
-- `progress_interval` (s), and callbacks `on_offer`, `on_preparing` (a
-- server is still hashing the file: `{server=}`, once per server; the
-- fetch waits for it), `on_start`, `on_drop`, `on_retry`, `on_progress`,
-- `on_done`, `on_error`.
-- `resume` (default true): a partial file that an interrupted, killed or
-- timed-out fetch of the name left in the output folder is the local copy
-- this one reuses chunks from, each checked against the offer's chunk-hash
-- tree (so a file changed since is never mixed); it is removed once the
-- file is in place. Without one, a regular file already under the name is
-- the local copy, so a changed file moves only the chunks that changed;
-- the new file replaces it only once its SHA-256 matched. Whatever is
-- under the name and cannot be the local copy (a symlink, never followed;
-- a FIFO, socket or device; a file that cannot be read) is left as it
-- is and the fetch fails at once (code "io"), unless `force = true`: then
-- it is replaced (a symlink itself, not what it points to). A folder is
-- never replaced. `resume = false` reuses nothing: every byte is fetched.
-- Whatever `resume` says, `abort()` and a timeout leave this fetch's
-- partial file for the next (not in legacy mode). The stats' `bytes` are
-- what came over the network, `reused` what was taken from the local copy.
-- A fetch whose whole file fails its SHA-256 although every chunk passed was
-- fed wrong bytes that were hashed with them (a server that lies, or,
-- keyless, chunks forged under a server's address): the hash beside a chunk
-- cannot say by whom. It is tried once more with every chunk checked
-- against its leaf of the offered chunk-hash tree (whose root the servers'
-- offers agree on), so a server sending a chunk that fails its leaf is
-- proven wrong and dropped at once, and none is left out on suspicion;
-- `on_retry{attempt=2, message=}` is called, and `pollfd()` may change.
-- The "done" event lists the servers so proven wrong as `dropped`.
-- Returns the transfer object, or nil, message, code.
function M.new(opts)
  options.check("udpxfer.get", opts, GET, { "name" })
  local targets, err, unicast = base.targets(opts)
  if not targets then return nil, err, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local link, own = opts.link, false
  if not link then
    local l, msg, code = core.link {}
    if not l then return nil, msg, code end
    link, own = l, true
  end
  local args = {
    name = opts.name, out = opts.out or ".", as = opts.as, root = opts.root, path = opts.path,
    memory = opts.memory, basis = opts.basis, durable = opts.durable,
    resume = opts.resume ~= false and not opts.legacy, dest = opts.force and "force" or "check",
    targets = targets, unicast = unicast, link = link,
    chunk_size = opts.chunk_size or (not opts.legacy and base.chunk_size_for(targets, opts.key) or nil),
    discover_timeout = opts.timeout,
    idle_timeout = opts.idle_timeout, sha256 = opts.sha256, window = opts.window,
    legacy = opts.legacy, exclude = opts.ignore_servers, limit_rate = opts.limit_rate, key = opts.key,
    verify = opts.verify,
  }
  local obj, msg, code = core.client(args)
  if not obj then
    if own then link:close() end
    return nil, msg, code
  end
  return setmetatable({ obj = obj, link = link, own_link = own, opts = opts, args = args, dropped = {} }, Get)
end

-- The whole file failed its hash (base.retry_verified): start again,
-- every chunk checked against the tree. Returns true if a new attempt is
-- under way (or its start failed, reported).
local function retry(self, ev)
  self.obj:close() -- its temporary file is gone already
  self.args.verify = true
  local obj, msg, code = core.client(self.args)
  if not obj then
    self.outcome = { type = "error", message = msg, code = code }
    call(self.opts.on_error, self.outcome)
    return true
  end
  self.obj = obj
  call(self.opts.on_retry, { type = "retry", attempt = 2, message = ev.message })
  return true
end

local client_handlers = {
  offer = function(self, ev) call(self.opts.on_offer, ev) end,
  preparing = function(self, ev) call(self.opts.on_preparing, ev) end,
  start = function(self, ev) call(self.opts.on_start, ev) end,
  drop = function(self, ev)
    if ev.reason == "corrupt" then self.dropped[#self.dropped + 1] = ev.server end
    call(self.opts.on_drop, ev)
  end,
  done = function(self, ev)
    ev.dropped = self.dropped
    self.outcome = ev
    call(self.opts.on_progress, self.obj:stats())
    call(self.opts.on_done, ev, self.obj:stats())
  end,
  error = function(self, ev)
    if base.retry_verified(ev, self.args.verify or self.opts.legacy) and retry(self, ev) then return end
    self.outcome = ev
    call(self.opts.on_error, ev)
  end,
}

--- Do whatever is due without blocking; dispatch callbacks. A fetch on a
-- shared link (`opts.link`) leaves the link's step to its owner.
-- Returns true once the transfer has finished, successfully or not.
function Get:step()
  if self.outcome then return true end
  if self.own_link then self.link:step() end
  for _, ev in ipairs(self.obj:drain()) do client_handlers[ev.type](self, ev) end
  progress(self, function(st) return st.state == "transfer" end)
  return self.outcome ~= nil
end

--- The link's descriptor: the same for the whole fetch.
function Get:pollfd() return self.link:pollfd() end

--- Stop now: the servers are told (CLOSE); the partial file stays for a
-- later fetch of the name to resume from (not in legacy mode).
function Get:abort()
  if not self.closed and not self.outcome then self.obj:abort("interrupted", true) end
  self:close()
end

--- Stop; a partial file is removed. Safe to call more than once.
function Get:close()
  if self.closed then return end
  base.forget(self.link:pollfd())
  Pollable.close(self)
  if self.own_link then self.link:close() end
end

return M
