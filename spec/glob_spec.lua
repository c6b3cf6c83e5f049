-- Exclude patterns (udpxfer.glob), as rsync reads them.
require "spec.helper"
local glob = require "udpxfer.glob"

local function check(patterns, cases)
  local m = glob.matcher(patterns)
  for _, c in ipairs(cases) do
    local path, is_dir, want = c[1], c[2], c[3]
    assert.are.equal(want, m(path, is_dir), ("%s on %s%s"):format(table.concat(patterns, " "), path,
      is_dir and "/" or ""))
  end
end

describe("glob", function()
  it("matches a name at any depth when the pattern has no '/'", function()
    check({ "*.log" }, { { "a.log", false, true }, { "x/y/a.log", false, true }, { "a.log.1", false, false },
      { "logs", true, false }, { "x.log", true, true } })
  end)

  it("matches folders only with a trailing '/'", function()
    check({ "build/" }, { { "build", true, true }, { "x/build", true, true }, { "build", false, false },
      { "builder", true, false } })
  end)

  it("anchors a leading '/' at the synced folder", function()
    check({ "/top/only" }, { { "top/only", false, true }, { "x/top/only", false, false }, { "top/only2", false, false } })
    check({ "/tmp" }, { { "tmp", true, true }, { "a/tmp", true, false } })
  end)

  it("matches a pattern with '/' against the end of the path otherwise", function()
    check({ "sub/f" }, { { "sub/f", false, true }, { "a/sub/f", false, true }, { "asub/f", false, false },
      { "sub/f/g", false, false } })
  end)

  it("keeps '*' within one name and lets '**' cross names", function()
    check({ "a*c" }, { { "abc", false, true }, { "ab/c", false, false }, { "x/abbbc", false, true } })
    check({ "src/**.o" }, { { "src/a.o", false, true }, { "src/x/y/a.o", false, true }, { "lib/a.o", false, false } })
    check({ "cache**" }, { { "cache/x/y", false, true }, { "cachefile", false, true }, { "a/cache", false, true } })
  end)

  it("matches one byte with '?', a class with [...], its complement with [!...]", function()
    check({ "?.txt" }, { { "a.txt", false, true }, { "ab.txt", false, false }, { "/.txt", false, false } })
    check({ "[ab].txt" }, { { "a.txt", false, true }, { "b.txt", false, true }, { "c.txt", false, false } })
    check({ "[!ab].txt" }, { { "c.txt", false, true }, { "a.txt", false, false } })
    check({ "[a-c]?" }, { { "b1", false, true }, { "d1", false, false } })
  end)

  it("takes a backslash to make the next character plain", function()
    check({ "\\*.txt" }, { { "*.txt", false, true }, { "a.txt", false, false } })
    check({ "a\\?" }, { { "a?", false, true }, { "ab", false, false } })
    check({ "\\[x]" }, { { "[x]", false, true }, { "x", false, false } })
  end)

  it("takes Lua's magic characters as plain ones", function()
    check({ "100%.txt", "a.b", "(x)+" }, { { "100%.txt", false, true }, { "axb", false, false }, { "a.b", false, true },
      { "(x)+", false, true } })
  end)

  it("excludes nothing without patterns, and matches with any of several", function()
    check({}, { { "anything", false, false } })
    check({ "*.tmp", "cache/" }, { { "x.tmp", false, true }, { "cache", true, true }, { "keep", false, false } })
  end)
end)
