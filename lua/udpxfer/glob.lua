--- Exclude patterns for sync, as rsync reads them: a pattern without '/'
-- matches a name at any depth; with '/', the path from the synced folder
-- (a leading '/' anchors it there too); a trailing '/' matches folders
-- only. `*` matches within one name, `**` across names, `?` one byte,
-- `[...]` a class (`[!...]` its complement), `\` makes the next character
-- plain (`\*` is a star). A folder that matches is left out with all it
-- holds.
local M = {}

--- The matcher of no globs: it matches nothing (and is this one function,
-- so a caller may skip asking it).
function M.NONE() return false end

-- A Lua pattern for one glob, anchored.
local function compile(glob)
  local out, i = { "^" }, 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "\\" and i < #glob then
      out[#out + 1] = glob:sub(i + 1, i + 1):gsub("%p", "%%%0")
      i = i + 2
    elseif c == "*" and glob:sub(i + 1, i + 1) == "*" then
      out[#out + 1] = ".*"
      i = i + 2
    elseif c == "*" then
      out[#out + 1] = "[^/]*"
      i = i + 1
    elseif c == "?" then
      out[#out + 1] = "[^/]"
      i = i + 1
    elseif c == "[" then
      local j = glob:find("]", i + 2, true)
      if not j then
        out[#out + 1] = "%["
        i = i + 1
      else
        local class = glob:sub(i + 1, j - 1):gsub("^!", "^"):gsub("%%", "%%%%")
        out[#out + 1] = "[" .. class .. "]"
        i = j + 1
      end
    else
      out[#out + 1] = c:gsub("%p", "%%%0")
      i = i + 1
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

--- A matcher for a list of globs: `matcher(path, is_dir)` is true when
-- PATH (relative, '/'-separated) is excluded. As rsync: a glob holding a
-- '/' (a trailing one aside) or `**` is matched against the whole path,
-- or, without a leading '/', against its end (`sub/f` matches `a/sub/f`);
-- any other against the last name only.
function M.matcher(globs)
  local rules = {}
  for _, g in ipairs(globs or {}) do
    local dir_only = g:sub(-1) == "/" and g ~= "/"
    if dir_only then g = g:sub(1, -2) end
    local anchored = g:sub(1, 1) == "/"
    local whole = anchored or g:find("/", 1, true) ~= nil or g:find("**", 1, true) ~= nil
    rules[#rules + 1] = { pattern = compile((g:gsub("^/", ""))), anchored = anchored, whole = whole,
      dir_only = dir_only }
  end
  if #rules == 0 then return M.NONE end
  local function matches(r, path)
    if not r.whole then return path:match("([^/]*)$"):match(r.pattern) ~= nil end
    if path:match(r.pattern) then return true end
    if r.anchored then return false end
    for at in path:gmatch("/()") do -- the path's ends: after each '/'
      if path:sub(at):match(r.pattern) then return true end
    end
    return false
  end
  return function(path, is_dir)
    for _, r in ipairs(rules) do
      if (not r.dir_only or is_dir) and matches(r, path) then return true end
    end
    return false
  end
end

return M
