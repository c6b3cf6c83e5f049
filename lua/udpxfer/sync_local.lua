--- What a sync does in its own folder: the report of each entry, an
-- entry's mode and time and its index record once in place, conflicts
-- cleared, folders, links, empty files and local copies made, deletions,
-- folder times, and temporary files left behind by fetches interrupted.
-- Each function takes the sync (sync.lua) as SELF.
local base = require "udpxfer.base"
local index = require "udpxfer.index"
local plan = require "udpxfer.plan"
local fetch = require "udpxfer.sync_fetch"

local core, call = base.core, base.call

local M = {}

-- The folder holding PATH.
local function parent(path) return path:match("^(.*)/[^/]*$") or "." end

--- Say what happened to PATH (on_file); its folder is then touched.
function M.report(self, path, action, extra)
  if action ~= "skip" and action ~= "error" then
    self.touched[parent(path)] = true -- its folder's time changes, and the index
  end
  local ev = extra or {}
  ev.type, ev.path, ev.action = "file", path, action
  if self.opts.dry_run then ev.dry_run = true end
  call(self.opts.on_file, ev)
  return ev
end

-- ---- after a file is in place: its mode, its time, the index ----

local function set_meta(self, e)
  local ok, err = self.dir:chmod(e.path, e.mode)
  if ok then ok, err = self.dir:utime(e.path, e.mtime) end
  if not ok then return nil, err end
  if e.type == "file" then
    local st = self.dir:stat(e.path)
    if st and st.stamp then -- still a regular file (not swapped for another kind meanwhile)
      self.index[e.path] = index.record(st, e.sha256)
    end
  end
  return true
end

--- PATH failed: counted, and reported.
function M.error_entry(self, path, msg, code)
  self.errors[#self.errors + 1] = { path = path, message = msg, code = code }
  M.report(self, path, "error", { message = msg, code = code })
end

--- E is in place. ST: its stat if the fetch set its mode and mtime already.
function M.file_done(self, e, action, extra, st)
  local path = e.path
  if st then
    self.index[path] = index.record(st, e.sha256)
  else
    local ok, err = set_meta(self, e)
    if not ok then return M.error_entry(self, path, err, "io") end
  end
  self.totals.changed = self.totals.changed + 1
  self.totals.files_done = self.totals.files_done + 1
  M.report(self, path, action, extra)
end

local function remove_old(self, item)
  local ok, err = self.dir:remove_tree(item.e.path)
  if not ok then M.error_entry(self, item.e.path, err, "io") end
  return ok
end

-- Local paths that are excluded or hold excluded entries.
local function holding_excluded(self)
  local set = {}
  for path, st in pairs(self.locals) do
    if plan.excluded_path(path, st.type == "dir", self.excluded) then
      local at = path
      while at and not set[at] do
        set[at] = true
        at = at:match("^(.*)/[^/]*$")
      end
    end
  end
  return set
end

-- Conflicts (a folder where a file goes, or the other way round) are
-- cleared with `delete`, unless that would remove excluded entries; else
-- reported: what lies below stays untouched.
function M.clear_conflicts(self, p)
  self.blocked = {}
  local keep = self.opts.delete and #p.conflicts > 0 and holding_excluded(self) or {}
  for _, c in ipairs(p.conflicts) do
    if keep[c.e.path] then
      self.blocked[c.e.path] = true
      M.error_entry(self, c.e.path, ("a %s is in the way, and excluded entries stay"):format(c.old.type), "io")
    elseif self.opts.delete then
      if not self.opts.dry_run then remove_old(self, c) end
      M.report(self, c.e.path, "delete", { replaced = c.old.type })
      self.totals.deleted = self.totals.deleted + 1
    else
      self.blocked[c.e.path] = true
      M.error_entry(self, c.e.path, ("a %s is in the way (use delete to replace it)"):format(c.old.type), "io")
    end
  end
end

local function blocked(self, path)
  if not next(self.blocked) then return false end -- no conflict: nothing to walk up to
  while path do
    if self.blocked[path] then return true end
    path = path:match("^(.*)/[^/]*$")
  end
  return false
end

--- Folders, links, empty files and local copies; files to fetch queued.
function M.steps(self, p)
  local dry, d = self.opts.dry_run, self.dir
  for _, s in ipairs(p.dirs) do
    if not blocked(self, s.e.path) then
      local ok, err = dry or d:mkdir(s.e.path, 0700)
      if ok then
        self.totals.changed = self.totals.changed + 1
        M.report(self, s.e.path, "mkdir")
      else
        M.error_entry(self, s.e.path, err, "io")
      end
    end
  end
  for _, s in ipairs(p.unsafe) do
    M.report(self, s.e.path, "skip", { message = "link target leaves the tree: " .. s.e.target, unsafe_link = true })
  end
  for _, s in ipairs(p.own) do
    M.report(self, s.e.path, "skip", { message = "a name udpxfer keeps for its own files" })
  end
  local function each(list, action, fn)
    for _, s in ipairs(list) do
      if not blocked(self, s.e.path) then
        if dry then
          self.totals.changed = self.totals.changed + 1
          M.report(self, s.e.path, action, { size = s.e.size })
        else
          local ok, err = fn(s)
          if ok == "fetch" then
            -- queued to be fetched instead
          elseif ok then
            if s.e.type == "file" then self.totals.bytes_done = self.totals.bytes_done + (s.e.size or 0) end
            M.file_done(self, s.e, action, { size = s.e.size })
          else
            M.error_entry(self, s.e.path, err, "io")
          end
        end
      end
    end
  end
  each(p.symlinks, "link", function(s) return d:symlink(s.e.path, s.e.target) end)
  each(p.empty, "create", function(s) return d:write(s.e.path, "") end)
  -- A copy must have the listed SHA-256 (its source may have changed since
  -- the index saw it, or gone: a conflict cleared above, a local user):
  -- else the file is fetched.
  local copies = {}
  for _, s in ipairs(p.copies) do
    local from = not dry and d:stat(s.from)
    if dry or (from and from.type == "file") then
      copies[#copies + 1] = s
    else
      p.fetches[#p.fetches + 1] = { e = s.e, old = s.old, basis = s.old and s.e.path or nil }
    end
  end
  each(copies, "copy", function(s)
    local ok = d:copy(s.from, s.e.path, s.e.mode, s.e.sha256)
    if ok then
      self.totals.bytes_reused = self.totals.bytes_reused + s.e.size
      return ok
    end
    fetch.queue(self, { e = s.e, old = s.old, basis = s.old and s.e.path or nil })
    return "fetch" -- a local copy is an optimisation: whatever spoils it, the servers have the file
  end)
  each(p.meta, "meta", function() return true end)
  -- new files as batches; a file with a local copy, or a partial file, on its own
  local new = {}
  for _, f in ipairs(p.fetches) do
    if not blocked(self, f.e.path) then
      if dry then
        self.totals.changed = self.totals.changed + 1
        M.report(self, f.e.path, "fetch", { size = f.e.size, basis = f.basis })
      elseif f.basis or self.partials[f.e.path] or not self.listing_sha256 then
        fetch.queue(self, f)
      else
        new[#new + 1] = f
      end
    end
  end
  if #new > 0 then fetch.batch(self, new) end
end

-- Is folder E as the listing has it already: nothing written in it by this
-- sync, its mode and mtime as listed?
local function settled(self, e)
  local st = self.locals[e.path]
  return not self.touched[e.path] and st ~= nil and st.type == "dir" and st.mode == e.mode and st.mtime == e.mtime
end

-- Temporary files that fetches interrupted or killed left behind (regular
-- files only: a folder or link so named is the user's and stays). One of
-- a file this sync fetches is left for that fetch to resume from (or to
-- remove); one of another listed file (or, with `delete`, of any name) is
-- removed, unless a fetch under way holds it.
function M.remove_leftovers(self, own, p)
  local folders = {}
  for _, st in ipairs(own) do
    if st.type == "file" then folders[parent(st.path)] = true end
  end
  if not next(folders) then return end
  local fetching, of = {}, {}
  for _, f in ipairs(p.fetches) do fetching[f.e.path] = true end
  for _, e in ipairs(self.entries) do
    local folder = parent(e.path)
    if e.type == "file" and folders[folder] and p.listed[e.path] then
      local prefix = core.partial_prefix(e.path:match("[^/]+$"))
      of[(folder == "." and "" or folder .. "/") .. prefix] = e.path
    end
  end
  for _, st in ipairs(own) do
    local target = st.type == "file" and of[st.path:sub(1, -9)]
    if target and fetching[target] then
      self.partials[target] = true
    elseif st.type == "file" and (target or self.opts.delete) then
      self.dir:remove_partial(st.path)
    end
  end
end


--- After every file: deletions, then the modes and times of folders not
-- already so, deepest first (writing into a folder changes its time).
function M.finish(self)
  local p, d, dry = self.plan, self.dir, self.opts.dry_run
  for _, del in ipairs(p.deletes) do
    local ok = not blocked(self, del.path) and (dry or d:remove(del.path))
    if ok then
      self.totals.deleted = self.totals.deleted + 1
      M.report(self, del.path, "delete")
    end -- a folder still holding excluded entries stays, and what a conflict blocks
  end
  if dry then return end
  local dirs, entries = {}, self.entries -- their indices: a listing's entries are made as they are read
  for i, e in ipairs(entries) do
    if e.type == "dir" and e.path ~= "." and not blocked(self, e.path) and p.listed[e.path]
      and not settled(self, e) then dirs[#dirs + 1] = i end
  end
  for i = #dirs, 1, -1 do set_meta(self, entries[dirs[i]]) end
end

return M
