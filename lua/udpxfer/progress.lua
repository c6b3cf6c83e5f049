--- Human-readable sizes, rates and a one-line progress bar.
local M = {}

local units = { "B", "KiB", "MiB", "GiB", "TiB" }

--- 1536 -> "1.5 KiB"
function M.bytes(n)
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(math.floor(n)) or ("%.1f %s"):format(n, units[i])
end

--- Seconds as "m:ss" (or "h:mm:ss").
function M.duration(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end

--- One progress line for a client's stats table, `width` columns for the bar.
function M.line(name, st, width)
  width = width or 24
  local frac = st.size > 0 and st.bytes / st.size or 1
  local fill = math.floor(frac * width + 0.5)
  local rate = st.elapsed > 0 and st.bytes / st.elapsed or 0
  local eta = rate > 0 and (st.size - st.bytes) / rate or math.huge
  local live = 0
  for _, s in ipairs(st.servers or {}) do if s.active then live = live + 1 end end
  return ("%s %3d%% [%s%s] %s / %s  %s/s  ETA %s  %d server%s"):format(
    name, math.floor(frac * 100), ("#"):rep(fill), (" "):rep(width - fill),
    M.bytes(st.bytes), M.bytes(st.size), M.bytes(rate), M.duration(eta), live, live == 1 and "" or "s")
end

return M
