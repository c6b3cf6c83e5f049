--- What a sync must do to make a local folder match a listing: compare
-- the listing's entries with the folder's (and with its index, which says
-- which local files are unchanged without reading them) and return the
-- steps, in the order they can run. Pure: nothing here reads or touches
-- the folder (a local file the index does not know, of the listed size
-- and mtime, is hashed by the caller first: M.to_check).
local core = require "udpxfer.core"
local glob = require "udpxfer.glob"
local index = require "udpxfer.index"

local M = {}

--- Is link TARGET, at PATH in the tree, safe to create: relative, and
-- resolving inside the tree whatever the other entries are? Its ".."
-- parts must all come first (rsync's rule since CVE-2024-12088), climbing
-- no higher than the link's own folder. They then climb through real
-- folders (every listed entry's parent is a listed folder, made as a real
-- one), and the rest only descends: a link met on the way resolves inside
-- by the same rule, so no chain of links leads out, in this listing or
-- combined with the links a later one creates. `a/../b` is refused too.
function M.safe_link(path, target)
  if target:sub(1, 1) == "/" or target == "" then return false end
  local depth = select(2, path:gsub("/", "")) -- folders above the link
  local descended = false
  for part in target:gmatch("[^/]+") do
    if part == ".." then
      depth = depth - 1
      if descended or depth < 0 then return false end
    elseif part ~= "." then
      descended = true
    end
  end
  return true
end

-- The indices of the listing's entries not acted on: excluded ones (and
-- everything below an excluded folder), and those named as udpxfer's own
-- files (its index, temporary files), which no server lists: these also
-- returned apart. A set of what is left out, not a list of what stays: a
-- listing may hold a million entries.
local function left_out(entries, excluded)
  local skip, own, cut = {}, {}, {}
  if excluded == glob.NONE and entries.has_own and not entries:has_own() then return skip, own end
  local any_cut = false
  for i = 1, #entries do
    local e = entries[i]
    local path = e.path
    local parent = any_cut and path:match("^(.*)/[^/]*$")
    local skip_it = path ~= "." and ((parent and cut[parent]) or excluded(path, e.type == "dir"))
    -- udpxfer's own names hold ".udpxfer-": only those are asked about
    if not skip_it and path:find(".udpxfer-", 1, true) and core.name_is_own(path:match("[^/]+$")) then
      own[#own + 1] = { e = e }
      skip_it = true
    end
    if skip_it then
      skip[i] = true
      if e.type == "dir" then cut[path], any_cut = true, true end
    end
  end
  return skip, own
end

--- Is PATH, or a folder above it, excluded?
function M.excluded_path(path, is_dir, excluded)
  if excluded(path, is_dir) then return true end
  local parent = path:match("^(.*)/[^/]*$")
  while parent do
    if excluded(parent, true) then return true end
    parent = parent:match("^(.*)/[^/]*$")
  end
  return false
end

-- The local file holding each SHA-256, as far as the index vouches for it;
-- made on the first question (a sync with nothing new asks none).
local function by_hash(idx, locals)
  return setmetatable({}, { __index = function(t, sha)
    setmetatable(t, nil)
    for path, e in pairs(idx) do
      local h = index.sha256(e)
      if not t[h] and index.current(e, locals[path]) then t[h] = path end
    end
    return rawget(t, sha)
  end })
end

--- The entries of a listing (ENTRIES: core.listing_decode's, or a list
-- with a `find(path)` method) a sync acts on, the excluded ones
-- (EXCLUDED: a glob matcher) left out, with everything below an excluded
-- folder: { entries, skip = { [index] = true }, own = {...} } (own:
-- entries named as udpxfer's own files, which no server lists).
function M.select(entries, excluded)
  local skip, own = left_out(entries, excluded)
  return { entries = entries, skip = skip, own = own }
end

-- { [path] = true } for the entries SEL acts on: a lookup in the listing
-- (a binary search), not a set of its own.
local function listed(sel)
  local entries, skip = sel.entries, sel.skip
  return setmetatable({}, { __index = function(_, path)
    local i = entries:find(path)
    return i ~= nil and not skip[i] or nil
  end })
end

-- A step naming only its entry E. A listing's entry is one already (its
-- field `e` is itself): a table around it would double what a listing of
-- a million folders costs.
local function step(e) return e.e and e or { e = e } end

-- The step for entry E (not a file known to be here as listed).
local function entry(p, e, locals, idx, hashes)
  local old = locals[e.path]
  if e.path == "." then
    p.root = e
  elseif e.type == "dir" then
    if old and old.type ~= "dir" then p.conflicts[#p.conflicts + 1] = { e = e, old = old } end
    if not old or old.type ~= "dir" then p.dirs[#p.dirs + 1] = step(e) end
  elseif e.type == "link" then
    if not M.safe_link(e.path, e.target) then
      p.unsafe[#p.unsafe + 1] = { e = e }
    elseif old and old.type == "dir" then
      p.conflicts[#p.conflicts + 1] = { e = e, old = old }
      p.symlinks[#p.symlinks + 1] = { e = e }
    elseif not old or old.type ~= "link" or old.target ~= e.target then
      p.symlinks[#p.symlinks + 1] = { e = e, old = old }
    elseif old.mtime ~= e.mtime then
      p.meta[#p.meta + 1] = { e = e, old = old }
    else
      p.unchanged = p.unchanged + 1
    end
  else
    p.files = p.files + 1
    M.file(p, e, old, idx, hashes)
  end
end

--- The plan. SEL: the listing's entries to act on (M.select); LOCALS: { [path] = stat } of
-- the folder (dir:scan()); IDX: its index; OPTS: delete, excluded (a glob
-- matcher), unchanged (optional: entries:unchanged(scan, idx), a byte per
-- entry, 1 for a file known to be here as listed). Returns { root = entry, dirs = {...}, symlinks = {...},
-- empty = {...}, copies = {...}, fetches = {...}, meta = {...}, deletes =
-- {...}, conflicts = {...}, unsafe = {...}, own = {...}, checks = {...},
-- unchanged = n, files = n, listed = { [path] = true } }, each step naming
-- its entry (`e`) and the local stat it replaces (`old`). `checks` ({path,
-- st} each) are local files the index cannot vouch for but which may be the
-- listed version (its size and mtime): planned as fetches, and worth
-- hashing and recording (index.record) before planning again.
function M.make(sel, locals, idx, opts)
  local p = { dirs = {}, symlinks = {}, empty = {}, copies = {}, fetches = {}, meta = {}, deletes = {},
    conflicts = {}, unsafe = {}, checks = {}, unchanged = 0, files = 0, listed = listed(sel) }
  local hashes = by_hash(idx, locals)
  p.own = sel.own
  local entries, skip, same = sel.entries, sel.skip, opts.unchanged
  for i = 1, #entries do
    if skip[i] then -- left out
    elseif same and same:byte(i) == 1 then -- here as listed, the index vouching for it
      p.files, p.unchanged = p.files + 1, p.unchanged + 1
    else
      entry(p, entries[i], locals, idx, hashes)
    end
  end
  if opts.delete then
    for path, st in pairs(locals) do
      if not p.listed[path] and not M.excluded_path(path, st.type == "dir", opts.excluded) then
        p.deletes[#p.deletes + 1] = { path = path, old = st }
      end
    end
    -- deepest first: what a folder holds goes before the folder (a
    -- folder still holding excluded entries stays)
    table.sort(p.deletes, function(a, b) return a.path > b.path end)
  end
  return p
end

--- The step for file entry E, whose local counterpart is OLD (or nil).
function M.file(p, e, old, idx, hashes)
  if old and old.type ~= "file" then
    p.conflicts[#p.conflicts + 1] = { e = e, old = old }
    old = nil
  end
  local known = old and idx[e.path]
  if known and index.current(known, old) then -- the index vouches for what it holds
    if index.sha256(known) == e.sha256 then
      if old.mode ~= e.mode or old.mtime ~= e.mtime then
        p.meta[#p.meta + 1] = { e = e, old = old }
      else
        p.unchanged = p.unchanged + 1
      end
      return
    end
  elseif old and old.size == e.size and old.mtime == e.mtime then
    p.checks[#p.checks + 1] = { path = e.path, st = old }
  end
  if e.size == 0 then
    p.empty[#p.empty + 1] = { e = e, old = old }
  elseif hashes[e.sha256] and hashes[e.sha256] ~= e.path then
    p.copies[#p.copies + 1] = { e = e, old = old, from = hashes[e.sha256] }
  else
    p.fetches[#p.fetches + 1] = old and { e = e, old = old, basis = e.path } or step(e)
  end
end

return M
