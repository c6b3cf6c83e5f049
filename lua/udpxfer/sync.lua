--- Folder sync: make a local folder match one that servers on the LAN
-- offer. The listing (one fetch, verified like any file) says what the
-- folder must hold; plan.lua says what to do about it; then folders and
-- links are made, files whose content is already here (the index knows)
-- are left alone or copied, the others fetched -- many at once over one
-- socket, each from every server with the same version, a changed file
-- fetching only the chunks that differ from the local copy -- and each
-- renamed into place once verified. Modes and times follow, deletions
-- last (with `delete`), the index is written, the file system synced.
local base = require "udpxfer.base"
local glob = require "udpxfer.glob"
local index = require "udpxfer.index"
local plan = require "udpxfer.plan"
local fetch = require "udpxfer.sync_fetch"
local here = require "udpxfer.sync_local"
local options = require "udpxfer.options"

local core, call = base.core, base.call

local M = {}

local Sync = base.class(base.Pollable)

--- Start syncing. Options: `remote` (required: a folder of a served tree,
-- "." for its root, or a share name), `dir` (required: the local folder,
-- which must exist), `delete` (remove what the listing lacks), `dry_run`
-- (change nothing, report what would change), `exclude` (a list of globs:
-- udpxfer.glob), `perms_all` (apply the listing's setuid, setgid and
-- sticky bits too; by default only the permission bits, 0777, are
-- applied, as rsync drops the others; DIR's own mode is never set),
-- `port`, `servers`, `broadcast` (as for `get`), `timeout` (for the
-- listing, s), `chunk_size`, `key`, `limit_rate` (bytes/s: what all its
-- fetches together ask for), `max_entries` (default 1,000,000: a listing
-- with more fails the sync with code "unsafe", nothing touched),
-- `progress_interval` (s), and callbacks
-- `on_file` ({path, action, size, bytes, reused} per entry acted on;
-- action one of "mkdir", "link", "fetch", "copy", "create", "meta",
-- "delete", "skip" (`unsafe_link` for a link the listing has that leads
-- out of the tree), "error"), `on_preparing` (a server is still hashing:
-- {server=}), `on_progress` (the stats), `on_done` (the summary),
-- `on_error`. An unknown option or a wrong type raises.
-- Returns the pollable sync, or nil, message, code.
local O = options
local SYNC = options.merge(base.ASK, base.PROGRESS, {
  remote = O.string, dir = O.string, delete = O.boolean, dry_run = O.boolean, exclude = O.strings,
  limit_rate = O.rate, perms_all = O.boolean, max_entries = O.integer(1, 4294967294), on_file = O.callback,
  on_preparing = O.callback,
})

function M.new(opts)
  options.check("udpxfer.sync", opts, SYNC, { "remote", "dir" })
  local targets, err, unicast = base.targets(opts)
  if not targets then return nil, err, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local dir, msg, code = core.dir(opts.dir)
  if not dir then return nil, msg, code end
  local link, lmsg, lcode = core.link()
  if not link then
    dir:close()
    return nil, lmsg, lcode
  end
  local self = setmetatable({
    opts = opts, dir = dir, link = link, targets = targets, servers = {}, seen = {},
    excluded = glob.matcher(opts.exclude), started = core.now(), phase = "listing",
    fetch = fetch.state(), errors = {},
    touched = {}, partials = {}, -- folders written into; files with a partial file to resume
    totals = { files = 0, changed = 0, deleted = 0, bytes_fetched = 0, bytes_reused = 0, bytes_total = 0,
      bytes_done = 0, files_done = 0, files_todo = 0 },
    chunk_size = opts.chunk_size or base.chunk_size_for(targets, opts.key),
  }, Sync)
  if opts.limit_rate then link:set_limit(math.floor(opts.limit_rate)) end -- what all fetches together ask for
  self.index, self.listings = index.load(dir)
  local obj, emsg, ecode = core.client {
    kind = "listing", name = opts.remote, link = link, targets = targets, basis_data = self.listings[opts.remote],
    unicast = unicast, chunk_size = self.chunk_size, discover_timeout = opts.timeout, key = opts.key,
  }
  if not obj then
    self:close()
    return nil, emsg, ecode
  end
  self.listing = obj
  return self
end

--- The link's descriptor: the same for the whole sync.
function Sync:pollfd() return self.link:pollfd() end
function Sync:events() return "r" end
--- Seconds until `step()` must run again (0 while there is work to start).
function Sync:timeout()
  if fetch.startable(self) then return 0 end
  return self.link:timeout()
end

local function fail(self, msg, code)
  if self.outcome then return end
  self.outcome = { type = "error", message = msg, code = code }
  call(self.opts.on_error, self.outcome)
end

Sync.error_entry = here.error_entry
Sync.file_done = here.file_done

-- After every file: what the folder still needs (sync_local.finish), and,
-- if anything changed, the index and a sync.
local function finish(self)
  local p, d, dry = self.plan, self.dir, self.opts.dry_run
  here.finish(self)
  if not dry then
    if next(self.touched) or self.checked > 0 or self.listing_changed then
      local ok, err = true, nil
      if not self.no_index then ok, err = index.save(d, self.index, self.listings) end
      -- after the index, which changes the time; its mode and owner stay the user's
      if ok and p.root then ok, err = d:set_self(p.root.mtime) end
      if ok then ok, err = d:sync() end
      if not ok then return fail(self, err, "io") end
    elseif p.root then
      d:set_self(p.root.mtime)
    end
  end
  local t = self.totals
  local summary = {
    type = "done", files = t.files, changed = t.changed, deleted = t.deleted, unchanged = p.unchanged,
    checked = self.checked,
    errors = #self.errors, bytes_fetched = t.bytes_fetched, bytes_reused = t.bytes_reused,
    bytes_wire = self.link:stats().rx_bytes, elapsed = core.now() - self.started, servers = #self.servers,
    dry_run = dry or nil,
  }
  if #self.errors > 0 then
    local first = self.errors[1]
    return fail(self, ("%d of the entries failed; %s: %s"):format(#self.errors, first.path, first.message), first.code)
  end
  self.outcome = summary
  call(self.opts.on_done, summary)
end

-- The modes a sync applies: the permission bits alone unless `perms_all`
-- (a LAN host that wins the vote must not plant setuid files). DIR's own
-- mode is never set (only its mtime): it is the user's.
local function mode_mask(self) return not self.opts.perms_all and 0x1ff or nil end -- 0777

local function begin(self, text, sha256)
  local entries, msg, code = core.listing_decode(text, self.opts.max_entries, mode_mask(self))
  if not entries then return fail(self, ("listing %s: %s"):format(self.opts.remote, msg), code) end
  self.entries = entries
  self.listing_sha256 = sha256
  local locals, lmsg = self.dir:scan()
  if not locals then return fail(self, lmsg, "io") end
  local own = {}
  for _, path in ipairs(locals:own()) do
    if path ~= index.NAME then own[#own + 1] = locals[locals:find(path)] end
  end
  local map = locals:map() -- compact: a table of its own for each entry would cost 5x
  self.locals = map
  local ist = self.dir:stat(index.NAME)
  if ist and ist.type ~= "file" then -- not ours: left as it is, and no index kept
    self.no_index = true
    here.report(self, index.NAME, "skip", { message = "not a regular file: no index is kept (files are checked by size and mtime)" })
  end
  self.listing_changed = self.listings[self.opts.remote] ~= text
  self.listings[self.opts.remote] = text
  self.checked = 0
  local sel = plan.select(entries, self.excluded)
  local popts = { delete = self.opts.delete, excluded = self.excluded, unchanged = entries:unchanged(locals, self.index) }
  local p = plan.make(sel, map, self.index, popts)
  if #p.checks > 0 then -- local files of the listed size and mtime: the listed version?
    for _, c in ipairs(p.checks) do
      local sha = self.dir:sha256(c.path)
      self.checked = self.checked + 1
      if sha then self.index[c.path] = index.record(c.st, sha) end
    end
    popts.unchanged = entries:unchanged(locals, self.index)
    p = plan.make(sel, map, self.index, popts)
  end
  collectgarbage() -- what reading a large listing and folder left behind goes before the work begins
  if not self.opts.dry_run then here.remove_leftovers(self, own, p) end
  self.plan = p
  self.totals.files = p.files
  for _, f in ipairs(p.fetches) do self.totals.bytes_total = self.totals.bytes_total + f.e.size end
  for _, c in ipairs(p.copies) do self.totals.bytes_total = self.totals.bytes_total + c.e.size end
  self.totals.files_todo = #p.fetches + #p.copies + #p.empty + #p.symlinks + #p.meta
  here.clear_conflicts(self, p)
  here.steps(self, p)
  self.phase = "fetch"
end

local function step_listing(self)
  for _, ev in ipairs(self.listing:drain()) do
    if (ev.type == "offer" or ev.type == "preparing") and not self.seen[ev.server] then
      self.seen[ev.server] = true -- it has the folder (or is hashing it): its files are asked of it
      self.servers[#self.servers + 1] = ev.server
    end
    if ev.type == "preparing" then
      call(self.opts.on_preparing, ev)
    elseif ev.type == "done" then
      local st = self.listing:stats()
      self.listing_bytes = st.bytes
      self.listing:close()
      self.listing = nil
      return begin(self, ev.data, ev.sha256)
    elseif ev.type == "error" then
      return fail(self, ("listing %s: %s"):format(self.opts.remote, ev.message), ev.code)
    end
  end
end

--- Counters: `phase` ("listing", "fetch", "done"), `files`, `files_done`,
-- `files_todo`, `bytes_total`, `bytes_done` (fetched or reused so far),
-- `bytes_fetched`, `bytes_reused`, `active` fetches, `elapsed`.
function Sync:stats()
  local t = self.totals
  return { phase = self.outcome and "done" or self.phase, files = t.files, files_done = t.files_done,
    files_todo = t.files_todo, bytes_total = t.bytes_total, bytes_done = t.bytes_done + fetch.moving(self),
    bytes_fetched = t.bytes_fetched, bytes_reused = t.bytes_reused, active = fetch.active(self),
    queued = fetch.queued(self), elapsed = core.now() - self.started,
    bytes_wire = self.link:stats().rx_bytes }
end

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true once the sync has finished, successfully or not.
function Sync:step()
  if self.outcome then return true end
  self.link:step()
  if self.phase == "listing" then
    step_listing(self)
  end
  if self.phase == "fetch" and not self.outcome and fetch.step(self) then finish(self) end
  base.progress(self)
  return self.outcome ~= nil
end

--- Stop now: the fetches under way tell their servers (CLOSE), their
-- partial files stay for the next sync to resume from; what is in place
-- stays.
function Sync:abort()
  if not self.closed then fetch.stop(self, true) end
  self:close()
end

--- Stop; fetches under way end, their partial files removed. Safe to call
-- more than once.
function Sync:close()
  if self.closed then return end
  base.forget(self.link:pollfd())
  self.closed = true
  fetch.stop(self, false)
  if self.listing then self.listing:close() end
  self.link:close()
  self.dir:close()
  if not self.outcome then self.outcome = { type = "error", message = "closed", code = "closed" } end
end

return M
