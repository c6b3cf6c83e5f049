--- The local index of a synced folder: for each file the last sync wrote
-- or checked, the size, mtime, inode and ctime it had then and its
-- SHA-256, so a later sync knows it unchanged without reading it. It is
-- one hidden file, `.udpxfer-index`, in the folder (listings, deletions
-- and servers leave it alone); written whole and atomically at the end.
local M = {}

M.NAME = ".udpxfer-index"
local MAGIC = "udpxfer-index 1"

local function escape(s) return (s:gsub("[%c%%\127 ]", function(c) return ("%%%02X"):format(c:byte()) end)) end
local function unescape(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

--- The index in DIR (a udpxfer.core.dir), as { [path] = {size, mtime,
-- ino, ctime, sha256} }; empty if there is none or it is unreadable.
function M.load(dir)
  local text = dir:read(M.NAME)
  local t = {}
  if not text or text:sub(1, #MAGIC + 1) ~= MAGIC .. "\n" then return t end
  for line in text:gmatch("[^\n]+") do
    local path, size, mtime, ino, ctime, sha = line:match("^(%S+)\t(%d+)\t(%-?%d+)\t(%d+)\t(%-?%d+)\t(%x+)$")
    if path then
      t[unescape(path)] = { size = math.tointeger(tonumber(size)), mtime = math.tointeger(tonumber(mtime)),
        ino = math.tointeger(tonumber(ino)), ctime = math.tointeger(tonumber(ctime)), sha256 = sha }
    end
  end
  return t
end

--- Write index T into DIR. Returns true, or nil, message, code.
function M.save(dir, t)
  local paths = {}
  for p in pairs(t) do paths[#paths + 1] = p end
  table.sort(paths)
  local out = { MAGIC }
  for _, p in ipairs(paths) do
    local e = t[p]
    out[#out + 1] = ("%s\t%d\t%d\t%d\t%d\t%s"):format(escape(p), e.size, e.mtime, e.ino, e.ctime, e.sha256)
  end
  out[#out + 1] = ""
  return dir:write(M.NAME, table.concat(out, "\n"))
end

--- Does local stat ST still describe the version index entry E recorded?
function M.current(e, st)
  return e ~= nil and st ~= nil and st.type == "file" and e.size == st.size and e.mtime == st.mtime
    and e.ino == st.ino and e.ctime == st.ctime
end

return M
