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

local core, call = base.core, base.call

local M = {}

local SMALL = 1 << 20    -- files up to this size go many at a time
local IN_FLIGHT = 64     -- fetches at once
local LARGE_IN_FLIGHT = 2 -- of them, larger files

local Sync = base.class(base.Pollable)

-- Files to fetch wait in two queues, small and large, each read from a
-- cursor (a sync may queue thousands: no shifting).
local function queue(self, f, front)
  local q = f.e.size > SMALL and self.queue_large or self.queue_small
  if front then
    q.at = q.at - 1
    q[q.at] = f
  else
    q.n = q.n + 1
    q[q.n] = f
  end
end

local function queued(self)
  return self.queue_small.n - self.queue_small.at + 1 + self.queue_large.n - self.queue_large.at + 1
end


--- Start syncing. Options: `remote` (required: a folder of a served tree,
-- "." for its root, or a share name), `dir` (required: the local folder,
-- which must exist), `delete` (remove what the listing lacks), `dry_run`
-- (change nothing, report what would change), `exclude` (a list of globs:
-- udpxfer.glob), `port`, `servers`, `broadcast` (as for `get`),
-- `timeout` (for the listing, s), `chunk_size`, `limit_rate` (bytes/s,
-- shared by the fetches under way), `max_entries` (default 1,000,000: a
-- listing with more fails the sync with code "unsafe", nothing touched),
-- and callbacks `on_file`
-- ({path, action, size, bytes, reused} per entry acted on; action one of
-- "mkdir", "link", "fetch", "copy", "create", "meta", "delete", "skip",
-- "error"), `on_progress` (the stats), `on_done` (the summary), `on_error`.
-- Returns the pollable sync, or nil, message, code.
function M.new(opts)
  assert(type(opts) == "table", "udpxfer.sync expects a table of options")
  assert(type(opts.remote) == "string", "udpxfer.sync: remote (string) is required")
  assert(type(opts.dir) == "string", "udpxfer.sync: dir (string) is required")
  assert(opts.max_entries == nil or (math.type(opts.max_entries) == "integer" and opts.max_entries >= 1),
    "udpxfer.sync: max_entries must be an integer of 1 or more")
  local targets, nbcast = base.targets(opts)
  if not targets then return nil, nbcast, "usage" end
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
    active = {}, queue_small = { at = 1, n = 0 }, queue_large = { at = 1, n = 0 }, large = 0, errors = {},
    touched = {}, partials = {}, -- folders written into; files with a partial file to resume
    totals = { files = 0, changed = 0, deleted = 0, bytes_fetched = 0, bytes_reused = 0, bytes_total = 0,
      bytes_done = 0, files_done = 0, files_todo = 0 },
    chunk_size = opts.chunk_size or base.chunk_size_for(targets, opts.key),
  }, Sync)
  self.index, self.listings = index.load(dir)
  local obj, emsg, ecode = core.client {
    kind = "listing", name = opts.remote, link = link, targets = targets, basis_data = self.listings[opts.remote],
    unicast = nbcast == 0, chunk_size = self.chunk_size, discover_timeout = opts.timeout, key = opts.key,
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
  if queued(self) > 0 and self:room() then return 0 end
  return self.link:timeout()
end

local function fail(self, msg, code)
  if self.outcome then return end
  self.outcome = { type = "error", message = msg, code = code }
  call(self.opts.on_error, self.outcome)
end

-- The folder holding PATH.
local function parent(path) return path:match("^(.*)/[^/]*$") or "." end

local function report(self, path, action, extra)
  if action ~= "skip" and action ~= "error" then
    self.touched[parent(path)] = true -- its folder's time changes, and the index
  end
  local ev = extra or {}
  ev.type, ev.path, ev.action = "file", path, action
  if self.opts.dry_run then ev.dry_run = true end
  call(self.opts.on_file, ev)
  return ev
end

local function remote_name(self, path)
  local r = self.opts.remote
  return (r == "." or r == "") and path or r .. "/" .. path
end

-- ---- after a file is in place: its mode, its time, the index ----

local function set_meta(self, e)
  local ok, err = self.dir:chmod(e.path, e.mode)
  if ok then ok, err = self.dir:utime(e.path, e.mtime) end
  if not ok then return nil, err end
  if e.type == "file" then
    local st = self.dir:stat(e.path)
    if st then
      self.plan.index[e.path] = { size = st.size, mtime = st.mtime, ino = st.ino, ctime = st.ctime, sha256 = e.sha256 }
    end
  end
  return true
end

local function error_entry(self, path, msg, code)
  self.errors[#self.errors + 1] = { path = path, message = msg, code = code }
  report(self, path, "error", { message = msg, code = code })
end

-- E is in place. ST: its stat if the fetch set its mode and mtime already.
local function file_done(self, e, action, extra, st)
  if st then
    self.plan.index[e.path] = { size = st.size, mtime = st.mtime, ino = st.ino, ctime = st.ctime, sha256 = e.sha256 }
  else
    local ok, err = set_meta(self, e)
    if not ok then return error_entry(self, e.path, err, "io") end
  end
  self.totals.changed = self.totals.changed + 1
  self.totals.files_done = self.totals.files_done + 1
  report(self, e.path, action, extra)
end

-- ---- fetching ----

function Sync:room()
  return #self.active < IN_FLIGHT
end

local function start_fetch(self, f)
  if f.e == f then f = { e = f } end -- a step that is only its entry (a listing's, read-only) gets a table now
  local e = f.e
  local obj, msg, code = core.client {
    name = remote_name(self, f.e.path), sha256 = e.sha256, root = self.dir, path = e.path, basis = f.basis,
    resume = self.partials[e.path] ~= nil, -- a fetch looks for partial files only where the scan saw one
    mode = e.mode, mtime = e.mtime,
    durable = false, link = self.link, targets = self.servers, unicast = true, verify = f.verify,
    chunk_size = self.chunk_size, discover_timeout = self.opts.file_timeout or 5, idle_timeout = 5,
    key = self.opts.key,
  }
  if not obj then return error_entry(self, e.path, msg, code) end
  f.obj = obj
  if e.size > SMALL then self.large = self.large + 1 end
  self.active[#self.active + 1] = f
end

-- Start what may start: large files up to LARGE_IN_FLIGHT, small ones
-- up to IN_FLIGHT in all.
local function start_more(self)
  local large, small = self.queue_large, self.queue_small
  while self:room() and large.at <= large.n and self.large < LARGE_IN_FLIGHT do
    local f = large[large.at]
    large[large.at], large.at = nil, large.at + 1
    start_fetch(self, f)
  end
  while self:room() and small.at <= small.n do
    local f = small[small.at]
    small[small.at], small.at = nil, small.at + 1
    start_fetch(self, f)
  end
end

local function finish_fetch(self, f, k)
  table.remove(self.active, k)
  if f.e.size > SMALL then self.large = self.large - 1 end
  local st = f.obj:stats()
  self.totals.bytes_fetched = self.totals.bytes_fetched + st.bytes
  self.totals.bytes_reused = self.totals.bytes_reused + st.reused
  self.totals.bytes_done = self.totals.bytes_done + f.e.size
  f.obj:close()
  f.obj = nil -- the plan keeps F to the end: a closed fetch (26 KiB) must not stay with it
  return st
end

-- A fetch whose whole file failed its hash though every chunk passed (wrong
-- bytes hashed with them): once more, every chunk checked against its leaf
-- of the tree, so whoever sends a wrong one is caught at that chunk (see
-- udpxfer.get).
local function retry(self, f)
  if f.verify then return false end
  f.verify = true
  queue(self, f, true)
  return true
end

-- A fetch told its file changed on the server (as a restarted server says
-- of every transfer it did not start): once more, resuming from its
-- partial file, against whichever servers answer now.
local function retry_stale(self, f)
  if f.stale_retried then return false end
  f.stale_retried = true
  self.partials[f.e.path] = true
  queue(self, f, true)
  return true
end

local function step_fetch(self, f, k)
  for _, ev in ipairs(f.obj:drain()) do
    if ev.type == "done" then
      local st = finish_fetch(self, f, k)
      file_done(self, f.e, "fetch", { size = f.e.size, bytes = st.bytes, reused = st.reused }, ev.stat)
      return true
    elseif ev.type == "error" then
      finish_fetch(self, f, k)
      self.totals.bytes_done = self.totals.bytes_done - f.e.size
      local again = (ev.code == "corrupt" and retry(self, f)) or (ev.code == "stale" and retry_stale(self, f))
      if not again then error_entry(self, f.e.path, ev.message, ev.code) end
      return true
    end
  end
  return false
end

-- A rate limit is shared by the fetches under way, anew whenever their
-- number changes.
local function share_limit(self)
  local limit = self.opts.limit_rate
  if not limit or #self.active == self.limited then return end
  self.limited = #self.active
  for _, f in ipairs(self.active) do f.obj:set_limit(math.max(1, limit // #self.active)) end
end

-- ---- the plan, carried out ----

local function remove_old(self, item)
  local ok, err = self.dir:remove_tree(item.e.path)
  if not ok then error_entry(self, item.e.path, err, "io") end
  return ok
end

-- Conflicts (a folder where a file goes, or the other way round) are
-- cleared with `delete`, else reported: what lies below stays untouched.
local function clear_conflicts(self, p)
  self.blocked = {}
  for _, c in ipairs(p.conflicts) do
    if self.opts.delete then
      if not self.opts.dry_run then remove_old(self, c) end
      report(self, c.e.path, "delete", { replaced = c.old.type })
      self.totals.deleted = self.totals.deleted + 1
    else
      self.blocked[c.e.path] = true
      error_entry(self, c.e.path, ("a %s is in the way (use delete to replace it)"):format(c.old.type), "io")
    end
  end
end

local function blocked(self, path)
  while path do
    if self.blocked[path] then return true end
    path = path:match("^(.*)/[^/]*$")
  end
  return false
end

local function local_steps(self, p)
  local dry, d = self.opts.dry_run, self.dir
  for _, s in ipairs(p.dirs) do
    if not blocked(self, s.e.path) then
      local ok, err = dry or d:mkdir(s.e.path, 0700)
      if ok then
        self.totals.changed = self.totals.changed + 1
        report(self, s.e.path, "mkdir")
      else
        error_entry(self, s.e.path, err, "io")
      end
    end
  end
  for _, s in ipairs(p.unsafe) do
    report(self, s.e.path, "skip", { message = "link target leaves the tree: " .. s.e.target })
  end
  local function each(list, action, fn)
    for _, s in ipairs(list) do
      if not blocked(self, s.e.path) then
        if dry then
          self.totals.changed = self.totals.changed + 1
          report(self, s.e.path, action, { size = s.e.size })
        else
          local ok, err = fn(s)
          if ok then
            if s.e.type == "file" then self.totals.bytes_done = self.totals.bytes_done + (s.e.size or 0) end
            file_done(self, s.e, action, { size = s.e.size })
          else
            error_entry(self, s.e.path, err, "io")
          end
        end
      end
    end
  end
  each(p.links, "link", function(s) return d:symlink(s.e.path, s.e.target) end)
  each(p.empty, "create", function(s) return d:write(s.e.path, "") end)
  each(p.copies, "copy", function(s)
    self.totals.bytes_reused = self.totals.bytes_reused + s.e.size
    return d:copy(s.from, s.e.path, s.e.mode)
  end)
  each(p.meta, "meta", function() return true end)
  for _, f in ipairs(p.fetches) do
    if not blocked(self, f.e.path) then
      if dry then
        self.totals.changed = self.totals.changed + 1
        report(self, f.e.path, "fetch", { size = f.e.size, basis = f.basis })
      else
        queue(self, f)
      end
    end
  end
end

-- Is folder E as the listing has it already: nothing written in it by this
-- sync, its mode and mtime as listed?
local function settled(self, e)
  local st = self.locals[e.path]
  return not self.touched[e.path] and st ~= nil and st.type == "dir" and st.mode == e.mode and st.mtime == e.mtime
end

-- After every file: deletions, then the modes and times of folders not
-- already so, deepest first (writing into a folder changes its time), and,
-- if anything changed, the index and a sync.
local function finish(self)
  local p, d, dry = self.plan, self.dir, self.opts.dry_run
  for _, del in ipairs(p.deletes) do
    local ok = dry or d:remove(del.path)
    if ok then
      self.totals.deleted = self.totals.deleted + 1
      report(self, del.path, "delete")
    end -- a folder still holding excluded entries stays
  end
  if not dry then
    local dirs, entries = {}, self.entries -- their indices: the entries are made as they are read
    for i, e in ipairs(entries) do
      if e.type == "dir" and e.path ~= "." and not blocked(self, e.path) and p.listed[e.path]
        and not settled(self, e) then dirs[#dirs + 1] = i end
    end
    for i = #dirs, 1, -1 do set_meta(self, entries[dirs[i]]) end
    if p.root then d:set_self(p.root.mode, p.root.mtime) end
    if next(self.touched) or p.checked > 0 or self.listing_changed then
      local ok, err = index.save(d, p.index, self.listings)
      if ok then ok, err = d:sync() end
      if not ok then return fail(self, err, "io") end
    end
  end
  local t = self.totals
  local summary = {
    type = "done", files = t.files, changed = t.changed, deleted = t.deleted, unchanged = p.unchanged,
    checked = p.checked,
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

-- Temporary files of fetches that were interrupted or killed: those of a
-- file this sync fetches are left for that fetch to resume from (or to
-- remove), the rest removed.
local function remove_leftovers(self, own, p)
  if #own == 0 then return end
  local fetching = {}
  for _, f in ipairs(p.fetches) do fetching[f.e.path] = true end
  for _, path in ipairs(own) do
    local folder, name = path:match("^(.-)/?%.([^/]+)%.udpxfer%-%x+$")
    local target = name and (folder ~= "" and folder .. "/" .. name or name)
    if target and fetching[target] then self.partials[target] = true else self.dir:remove_tree(path) end
  end
end

local function begin(self, text)
  local entries, msg, code = core.listing_decode(text, self.opts.max_entries)
  if not entries then return fail(self, ("listing %s: %s"):format(self.opts.remote, msg), code) end
  self.entries = entries
  local locals, lmsg = self.dir:scan()
  if not locals then return fail(self, lmsg, "io") end
  local map, own = locals:map(), {} -- compact: a table of its own for each entry would cost 5x
  for _, path in ipairs(locals:own()) do
    if path ~= index.NAME then own[#own + 1] = path end
  end
  self.locals = map
  self.listing_changed = self.listings[self.opts.remote] ~= text
  self.listings[self.opts.remote] = text
  local p = plan.make(entries, map, self.index, self.dir,
    { delete = self.opts.delete, excluded = self.excluded })
  collectgarbage() -- what reading a large listing and folder left behind goes before the work begins
  if not self.opts.dry_run then remove_leftovers(self, own, p) end
  self.plan = p
  self.totals.files = p.files
  for _, f in ipairs(p.fetches) do self.totals.bytes_total = self.totals.bytes_total + f.e.size end
  for _, c in ipairs(p.copies) do self.totals.bytes_total = self.totals.bytes_total + c.e.size end
  self.totals.files_todo = #p.fetches + #p.copies + #p.empty + #p.links + #p.meta
  clear_conflicts(self, p)
  local_steps(self, p)
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
      return begin(self, ev.data)
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
  local done = t.bytes_done
  for _, f in ipairs(self.active) do
    local st = f.obj:stats()
    done = done + st.bytes + st.reused
  end
  return { phase = self.outcome and "done" or self.phase, files = t.files, files_done = t.files_done,
    files_todo = t.files_todo, bytes_total = t.bytes_total, bytes_done = done, bytes_fetched = t.bytes_fetched,
    bytes_reused = t.bytes_reused, active = #self.active, queued = queued(self), elapsed = core.now() - self.started,
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
  if self.phase == "fetch" and not self.outcome then
    start_more(self)
    local k = 1
    while k <= #self.active do
      if not step_fetch(self, self.active[k], k) then k = k + 1 end
    end
    start_more(self)
    share_limit(self)
    if #self.active == 0 and queued(self) == 0 then finish(self) end
  end
  base.progress(self)
  return self.outcome ~= nil
end

--- Stop now: the fetches under way tell their servers (CLOSE), their
-- partial files stay for the next sync to resume from; what is in place
-- stays.
function Sync:abort()
  if not self.closed then
    for _, f in ipairs(self.active) do f.obj:abort("interrupted", true) end
  end
  self:close()
end

--- Stop; fetches under way end, their partial files removed. Safe to call
-- more than once.
function Sync:close()
  if self.closed then return end
  base.forget(self.link:pollfd())
  self.closed = true
  for _, f in ipairs(self.active) do f.obj:close() end
  self.active = {}
  if self.listing then self.listing:close() end
  self.link:close()
  self.dir:close()
  if not self.outcome then self.outcome = { type = "error", message = "closed", code = "closed" } end
end

return M
