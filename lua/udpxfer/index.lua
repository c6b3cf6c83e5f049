--- The local index of a synced folder: for each file the last sync wrote
-- or checked, the size, mtime, inode and ctime it had then and its
-- SHA-256, so a later sync knows it unchanged without reading it; and the
-- listing each remote folder had, so the next listing is fetched as a
-- change against it (only the chunks that differ). One hidden file,
-- `.udpxfer-index`, in the folder (listings, deletions and servers leave
-- it alone); written whole and atomically at the end of a sync.
local M = {}

M.NAME = ".udpxfer-index"
local MAGIC = "udpxfer-index 1"

local function escape(s) return (s:gsub("[%c%%\127 ]", function(c) return ("%%%02X"):format(c:byte()) end)) end
local function unescape(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

--- The index in DIR (a udpxfer.core.dir): { [path] = {size, mtime, ino,
-- ctime, sha256} } and { [remote] = listing text }; empty if there is none
-- or it is unreadable.
function M.load(dir)
  local text = dir:read(M.NAME)
  local t, listings = {}, {}
  if not text or text:sub(1, #MAGIC + 1) ~= MAGIC .. "\n" then return t, listings end
  local pos = #MAGIC + 2
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then break end
    local line = text:sub(pos, nl - 1)
    local remote, len = line:match("^=listing\t(%S*)\t(%d+)$")
    if remote then
      len = tonumber(len)
      listings[unescape(remote)] = text:sub(nl + 1, nl + len)
      pos = nl + len + 2
    else
      local path, size, mtime, ino, ctime, sha = line:match("^(%S+)\t(%d+)\t(%-?%d+)\t(%d+)\t(%-?%d+)\t(%x+)$")
      if path then
        t[unescape(path)] = { size = math.tointeger(tonumber(size)), mtime = math.tointeger(tonumber(mtime)),
          ino = math.tointeger(tonumber(ino)), ctime = math.tointeger(tonumber(ctime)), sha256 = sha }
      end
      pos = nl + 1
    end
  end
  return t, listings
end

--- Write index T and LISTINGS into DIR. Returns true, or nil, message, code.
function M.save(dir, t, listings)
  local paths = {}
  for p in pairs(t) do paths[#paths + 1] = p end
  table.sort(paths)
  local out = { MAGIC }
  for _, p in ipairs(paths) do
    local e = t[p]
    out[#out + 1] = ("%s\t%d\t%d\t%d\t%d\t%s"):format(escape(p), e.size, e.mtime, e.ino, e.ctime, e.sha256)
  end
  for remote, text in pairs(listings or {}) do
    out[#out + 1] = ("=listing\t%s\t%d"):format(escape(remote), #text)
    out[#out + 1] = text
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
