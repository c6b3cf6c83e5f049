--- What a sync must do to make a local folder match a listing: compare
-- the listing's entries with the folder's (and with its index, which says
-- which local files are unchanged without reading them) and return the
-- steps, in the order they can run. Nothing here touches the folder
-- except reading it (and hashing a local file whose size and mtime match
-- but which the index does not know).
local index = require "udpxfer.index"

local M = {}

--- Is link TARGET, at PATH in the tree, relative and kept inside the tree?
-- (rsync's --safe-links, judged on the text alone.)
function M.safe_link(path, target)
  if target:sub(1, 1) == "/" or target == "" then return false end
  local depth = select(2, path:gsub("/", "")) -- folders above the link
  for part in target:gmatch("[^/]+") do
    if part == ".." then
      depth = depth - 1
      if depth < 0 then return false end
    elseif part ~= "." then
      depth = depth + 1
    end
  end
  return true
end

-- The entries of the listing to act on, one at a time (a listing may
-- hold a million): excluded ones (and everything below an excluded
-- folder) left out.
local function wanted(entries, excluded)
  local cut, i = {}, 0
  return function()
    while true do
      i = i + 1
      local e = entries[i]
      if not e then return nil end
      local path = e.path
      local parent = path:match("^(.*)/[^/]*$")
      local skip = path ~= "." and ((parent and cut[parent]) or excluded(path, e.type == "dir"))
      if not skip then return e end
      if e.type == "dir" then cut[path] = true end
    end
  end
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

-- The local file holding each SHA-256, as far as the index vouches for it.
local function by_hash(idx, locals)
  local t = {}
  for path, e in pairs(idx) do
    if index.current(e, locals[path]) and not t[e.sha256] then t[e.sha256] = path end
  end
  return t
end

-- A step naming only its entry E. A listing's entry is one already (its
-- field `e` is itself): a table around it would double what a listing of
-- a million folders costs.
local function step(e) return e.e and e or { e = e } end

-- { [path] = true } for the entries acted on: a lookup in the listing
-- (a binary search), not a set of its own.
local function listed(entries, excluded)
  return setmetatable({}, { __index = function(_, path)
    local i = entries:find(path)
    return i ~= nil and (path == "." or not M.excluded_path(path, entries[i].type == "dir", excluded))
  end })
end

--- The plan. ENTRIES: the decoded listing (core.listing_decode); LOCALS:
-- { [path] = stat } of the folder (dir:scan():map()); IDX: its index;
-- DIR: the folder (to hash a file the index does not know); OPTS: delete,
-- excluded (a glob matcher).
-- Returns { root = entry, dirs = {...}, links = {...}, empty = {...},
-- copies = {...}, fetches = {...}, meta = {...}, deletes = {...},
-- conflicts = {...}, unsafe = {...}, unchanged = n, files = n, index = idx,
-- listed = { [path] = true } }, each step naming its entry (`e`) and the
-- local stat it replaces (`old`).
function M.make(entries, locals, idx, dir, opts)
  local p = { dirs = {}, links = {}, empty = {}, copies = {}, fetches = {}, meta = {}, deletes = {},
    conflicts = {}, unsafe = {}, unchanged = 0, checked = 0, files = 0, index = idx,
    listed = listed(entries, opts.excluded) }
  local hashes = by_hash(idx, locals)
  for e in wanted(entries, opts.excluded) do
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
        p.links[#p.links + 1] = { e = e }
      elseif not old or old.type ~= "link" or old.target ~= e.target then
        p.links[#p.links + 1] = { e = e, old = old }
      elseif old.mtime ~= e.mtime then
        p.meta[#p.meta + 1] = { e = e, old = old }
      else
        p.unchanged = p.unchanged + 1
      end
    else
      p.files = p.files + 1
      M.file(p, e, old, idx, hashes, dir)
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

-- Is the local file OLD at E's path already E's content? The index says
-- so for a file it vouches for; a file it does not know, of the same size
-- and mtime, is hashed.
local function same_content(p, e, old, idx, dir)
  local known = idx[e.path]
  if index.current(known, old) then return known.sha256 == e.sha256 end
  if old.size ~= e.size or old.mtime ~= e.mtime then return false end
  local sha = dir:sha256(e.path)
  p.checked = p.checked + 1
  if sha == e.sha256 then
    idx[e.path] = { size = old.size, mtime = old.mtime, ino = old.ino, ctime = old.ctime, sha256 = sha }
    return true
  end
  return false
end

--- The step for file entry E, whose local counterpart is OLD (or nil).
function M.file(p, e, old, idx, hashes, dir)
  if old and old.type ~= "file" then
    p.conflicts[#p.conflicts + 1] = { e = e, old = old }
    old = nil
  end
  if old and same_content(p, e, old, idx, dir) then
    if old.mode ~= e.mode or old.mtime ~= e.mtime then
      p.meta[#p.meta + 1] = { e = e, old = old }
    else
      p.unchanged = p.unchanged + 1
    end
  elseif e.size == 0 then
    p.empty[#p.empty + 1] = { e = e, old = old }
  elseif hashes[e.sha256] and hashes[e.sha256] ~= e.path then
    p.copies[#p.copies + 1] = { e = e, old = old, from = hashes[e.sha256] }
  else
    p.fetches[#p.fetches + 1] = old and { e = e, old = old, basis = e.path } or step(e)
  end
end

return M
