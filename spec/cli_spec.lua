-- The udpxfer command, run as a process against a server process, over
-- loopback (127.255.255.255 broadcast or 127.0.0.1 unicast only).
local H = require "spec.helper"
local cli = require "udpxfer.cli"
local json_decode_field = function(s, k) return s:match('"' .. k .. '":"?([^,"}]*)') end

describe("udpxfer command", function()
  local dir, pid, port, pipe

  setup(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write_random(dir .. "/srv/file.bin", 1500000)
    H.write(dir .. "/srv/hello.txt", "hello\n")
    pid, port, pipe = H.start_server(dir .. "/srv")
  end)

  teardown(function()
    H.kill(pid)
    pipe:close()
    H.rmrf(dir)
  end)

  local function udpx(args)
    return H.run(H.UDPXFER .. " " .. args)
  end

  it("gets a file found by broadcast on 127.255.255.255 and prints its path", function()
    local code, out = udpx(("get file.bin --port %d --broadcast 127.255.255.255 --out %s"):format(port, dir .. "/out"))
    assert.are.equal(0, code)
    assert.are.equal(dir .. "/out/file.bin\n", out)
    assert.is_true(H.read(dir .. "/srv/file.bin") == H.read(dir .. "/out/file.bin"))
  end)

  it("accepts the seed's spellings: -p and the server command", function()
    local spid, sp = H.spawn(H.UDPXFER .. " server " .. H.shell_quote(dir .. "/srv") .. " -p 0 --json")
    local sport = tonumber(sp:read("l"):match('"port":(%d+)'))
    local code = udpx(("get hello.txt -p %d --broadcast none --server 127.0.0.1 -o %s -q"):format(sport, dir .. "/out"))
    H.kill(spid)
    sp:close()
    assert.are.equal(0, code)
    assert.are.equal("hello\n", H.read(dir .. "/out/hello.txt"))
  end)

  it("reports success as JSON with --json", function()
    local code, out = udpx(("get hello.txt --port %d --server 127.0.0.1:%d --broadcast none --out %s --json")
      :format(port, port, dir .. "/out"))
    assert.are.equal(0, code)
    local last = out:match("([^\n]+)\n$")
    assert.are.equal("done", json_decode_field(last, "type"))
    assert.are.equal(H.core.sha256("hello\n"), json_decode_field(last, "sha256"))
  end)

  it("exits 3 with a clear message for a missing file", function()
    local code, out, err = udpx(("get nope.txt --port %d --server 127.0.0.1 --broadcast none --out %s")
      :format(port, dir .. "/out"))
    assert.are.equal(3, code)
    assert.are.equal("", out)
    assert.matches("nope.txt: file not found", err)
  end)

  it("exits 3 when the server refuses ../../etc/passwd", function()
    local code, _, err = udpx(("get ../../etc/passwd --port %d --server 127.0.0.1 --broadcast none --out %s")
      :format(port, dir .. "/out"))
    assert.are.equal(3, code)
    assert.matches("refused", err)
    assert.is_nil(H.read(dir .. "/out/passwd"))
  end)

  it("exits 3 within the timeout when no server answers", function()
    local t0 = H.core.now()
    local code, _, err = udpx(("get hello.txt --port 9 --server 127.0.0.1 --broadcast none --timeout 1 --out %s")
      :format(dir .. "/out"))
    assert.are.equal(3, code)
    assert.matches("no server answered", err)
    assert.is_true(H.core.now() - t0 < 5)
  end)

  it("exits 2 on usage errors", function()
    assert.are.equal(2, (udpx("get")))
    assert.are.equal(2, (udpx("frobnicate")))
    assert.are.equal(2, (udpx("get x --port")))
    assert.are.equal(2, (udpx("get x --bogus")))
  end)

  it("logs one line per request and per finished transfer on the server", function()
    udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none --out %s -q"):format(port, dir .. "/out"))
    local req, done
    for _ = 1, 50 do
      local line = pipe:read("l")
      if not line then break end
      if line:match('"type":"request"') and line:match('"name":"hello.txt"') then req = true end
      if line:match('"type":"done"') and line:match('"name":"hello.txt"') then done = line break end
    end
    assert.is_true(req)
    assert.matches('"reason":"complete"', done)
  end)

  it("parses options in both --opt value and --opt=value forms", function()
    local cmd, pos, opt = cli.parse { "get", "a", "--port=7", "--server", "h1", "--server=h2", "-q" }
    assert.are.equal("get", cmd)
    assert.are.same({ "a" }, pos)
    assert.are.equal(7, opt.port)
    assert.are.same({ "h1", "h2" }, opt.server)
    assert.is_true(opt.quiet)
  end)
end)
