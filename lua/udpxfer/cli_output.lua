--- What the command line prints: exit codes, one-line errors, log and
-- JSON lines, the progress line that redraws in place.
local udpxfer = require "udpxfer"

local core = udpxfer.core

local M = {}

--- Exit codes, stable for scripts.
M.EXIT = { ok = 0, failed = 1, usage = 2, notfound = 3, corrupt = 4, io = 5, sigint = 130, sigterm = 143 }

M.CODE_EXIT = {
  noserver = M.EXIT.notfound, notfound = M.EXIT.notfound, refused = M.EXIT.notfound,
  version = M.EXIT.notfound, timeout = M.EXIT.notfound, corrupt = M.EXIT.corrupt, stale = M.EXIT.corrupt,
  unsafe = M.EXIT.corrupt, io = M.EXIT.io, usage = M.EXIT.usage, inuse = M.EXIT.io,
  broken = M.EXIT.failed, busy = M.EXIT.failed,
}

--- Now, for a log line.
function M.stamp() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

--- Text a peer sent, fit to print: no control characters.
function M.clean(s) return (tostring(s):gsub("[%c\127]", "?")) end

--- S in double quotes for a log line: control characters (C0, DEL, C1 as
-- UTF-8), quotes and backslashes escaped, so a name cannot forge a line.
function M.quoted(s)
  local esc = { ["\n"] = "\\n", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
  s = tostring(s):gsub("[%c\"\\\127]", function(c) return esc[c] or ("\\x%02x"):format(c:byte()) end)
  return '"' .. s:gsub("\194([\128-\159])", function(c) return ("\\xc2\\x%02x"):format(c:byte()) end) .. '"'
end

--- A JSON line of EV (--json), else TEXT unless quiet.
function M.emit(opt, out, ev, text)
  if opt.json then
    out:write(require("dkjson").encode(ev), "\n") -- loaded for --json alone
  elseif not opt.quiet and text then
    out:write(text, "\n")
  end
  out:flush()
end

--- A progress line on stderr that redraws in place and never wraps.
function M.status_line(err)
  local shown = false
  return {
    show = function(text)
      err:write("\r", text, "\27[K")
      shown = true
    end,
    clear = function()
      if shown then err:write("\r\27[K") end
      shown = false
    end,
  }
end

--- The terminal's columns.
function M.width() return core.term_width(2) or 80 end

--- Say MSG in one line; returns the exit code for CODE (or RC).
function M.fail(err, msg, code, rc)
  err:write("udpxfer: ", M.clean(msg), "\n")
  return rc or M.CODE_EXIT[code] or M.EXIT.failed
end


return M
