--- Exclude patterns for sync, as rsync reads them: a pattern without '/'
-- matches a name at any depth; with '/', the path from the synced folder
-- (a leading '/' anchors it there too); a trailing '/' matches folders
-- only. `*` matches within one name, `**` across names, `?` one byte,
-- `[...]` a class. A folder that matches is left out with all it holds.
local M = {}

-- A Lua pattern for one glob, anchored.
local function compile(glob)
  local out, i = { "^" }, 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "*" and glob:sub(i + 1, i + 1) == "*" then
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
-- PATH (relative, '/'-separated) is excluded.
function M.matcher(globs)
  local rules = {}
  for _, g in ipairs(globs or {}) do
    local dir_only = g:sub(-1) == "/"
    if dir_only then g = g:sub(1, -2) end
    local anchored = g:find("/", 1, true) ~= nil
    rules[#rules + 1] = { pattern = compile((g:gsub("^/", ""))), anchored = anchored, dir_only = dir_only }
  end
  if #rules == 0 then return function() return false end end
  return function(path, is_dir)
    local base = path:match("([^/]*)$")
    for _, r in ipairs(rules) do
      if (not r.dir_only or is_dir) and (r.anchored and path or base):match(r.pattern) then return true end
    end
    return false
  end
end

return M
