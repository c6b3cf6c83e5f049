--- The local index of a synced folder: for each file the last sync wrote
-- or checked, the size, mtime, inode and ctime it had then and its
-- SHA-256, so a later sync knows it unchanged without reading it; and the
-- listing each remote folder had, so the next listing is fetched as a
-- change against it (only the chunks that differ). One hidden file,
-- `.udpxfer-index`, in the folder (listings, deletions and servers leave
-- it alone); written whole and atomically at the end of a sync.
local M = {}

M.NAME = ".udpxfer-index"
local MAGIC = "udpxfer-index 2\n"
-- A file's record: "f", path, size, mtime (ns), inode, ctime (ns), SHA-256
-- (hex); a listing's: "l", the remote, its text.
local FILE = "<s2i8i8i8i8c64"
local LISTING = "<s2s4"

--- The index in DIR (a udpxfer.core.dir): { [path] = {size, mtime, ino,
-- ctime, sha256} } and { [remote] = listing text }; empty if there is none
-- or it is unreadable.
function M.load(dir)
  local text = dir:read(M.NAME)
  local t, listings = {}, {}
  if not text or text:sub(1, #MAGIC) ~= MAGIC then return t, listings end
  local ok = pcall(function()
    local pos, unpack = #MAGIC + 1, string.unpack
    while pos <= #text do
      local kind = text:sub(pos, pos)
      if kind == "l" then
        local remote, listing
        remote, listing, pos = unpack(LISTING, text, pos + 1)
        listings[remote] = listing
      elseif kind == "f" then
        local path, size, mtime, ino, ctime, sha
        path, size, mtime, ino, ctime, sha, pos = unpack(FILE, text, pos + 1)
        t[path] = { size = size, mtime = mtime, ino = ino, ctime = ctime, sha256 = sha }
      else
        error("not an index record")
      end
    end
  end)
  if not ok then return {}, {} end -- truncated or damaged: as if there were none
  return t, listings
end

--- Write index T and LISTINGS into DIR. Returns true, or nil, message, code.
function M.save(dir, t, listings)
  local out, pack = { MAGIC }, string.pack
  for p, e in pairs(t) do
    if #p < 65536 and #e.sha256 == 64 then
      out[#out + 1] = "f" .. pack(FILE, p, e.size, e.mtime, e.ino, e.ctime, e.sha256)
    end
  end
  for remote, text in pairs(listings or {}) do
    out[#out + 1] = "l" -- apart: a listing may be large, and is copied once here already
    out[#out + 1] = pack(LISTING, remote, text)
  end
  return dir:write(M.NAME, table.concat(out))
end

--- The index's record of a local file: ST its stat (dir:stat, dir:scan),
-- SHA256 (hex) what it holds.
function M.record(st, sha256)
  return { size = st.size, mtime = st.mtime, ino = st.ino, ctime = st.ctime, sha256 = sha256 }
end

--- Does local stat ST still describe the version index entry E recorded?
function M.current(e, st)
  return e ~= nil and st ~= nil and st.type == "file" and e.size == st.size and e.mtime == st.mtime
    and e.ino == st.ino and e.ctime == st.ctime
end

return M
