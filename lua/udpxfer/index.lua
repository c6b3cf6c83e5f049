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
-- A file's record: "f", path, its stamp (size, mtime (ns), inode, ctime
-- (ns): M.stamp), SHA-256 (hex); a listing's: "l", the remote, its text.
local RECORD = 96 -- a file's stamp (32 bytes) and SHA-256 (64, hex)
local STAMP = "<i8i8i8i8"
local LISTING = "<s2s4"

--- The index in DIR (a udpxfer.core.dir): { [path] = record (M.record) } and { [remote] = listing text }; empty if there is none
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
        local path
        path, pos = unpack("<s2", text, pos + 1)
        if pos + RECORD - 1 > #text then error("truncated") end
        t[path] = text:sub(pos, pos + RECORD - 1)
        pos = pos + RECORD
      else
        error("not an index record")
      end
    end
  end)
  if not ok then return {}, {} end -- truncated or damaged: as if there were none
  return t, listings
end

local PIECE = 512 -- records joined per piece: the index is written without one copy of it whole

--- Write index T and LISTINGS into DIR. Returns true, or nil, message, code.
function M.save(dir, t, listings)
  local pieces, batch, pack, concat = { MAGIC }, {}, string.pack, table.concat
  for p, e in pairs(t) do
    if #p < 65536 and #e == RECORD then
      batch[#batch + 1] = "f" .. pack("<s2", p) .. e
      if #batch == PIECE then
        pieces[#pieces + 1] = concat(batch)
        batch = {}
      end
    end
  end
  pieces[#pieces + 1] = concat(batch)
  for remote, text in pairs(listings or {}) do
    pieces[#pieces + 1] = "l" .. pack("<s2", remote) .. pack("<I4", #text)
    pieces[#pieces + 1] = text -- not copied: a listing may be large
  end
  return dir:write(M.NAME, pieces)
end

--- A file's stamp: its SIZE, MTIME and CTIME (ns) and inode INO in one
-- string, as the `stamp` field of dir:stat() and dir:scan() entries gives
-- it (regular files only): the one value compared to know a file unchanged.
function M.stamp(size, mtime, ino, ctime) return string.pack(STAMP, size, mtime, ino, ctime) end

--- The index's record of a local file: ST its stat (dir:stat, dir:scan),
-- SHA256 (hex) what it holds. One string, its stamp and hash: a table each
-- would triple what the index of a large tree costs.
function M.record(st, sha256)
  assert(st.stamp, "not a regular file")
  assert(#sha256 == 64, "not a SHA-256 in hex")
  return st.stamp .. sha256
end

--- The SHA-256 (hex) record R says its file holds.
function M.sha256(r) return r:sub(33) end

--- Does local stat ST still describe the version index record R recorded?
-- (Only a regular file's stat has a stamp.)
function M.current(r, st)
  return r ~= nil and st ~= nil and st.stamp ~= nil and r:sub(1, 32) == st.stamp
end

return M
