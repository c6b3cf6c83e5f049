-- The udpxfer command, run as a process against a server process, over
-- loopback (127.255.255.255 broadcast or 127.0.0.1 unicast only).
local H = require "spec.helper"
local cli = require "udpxfer.cli"
local json = require "dkjson"

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
    local last = json.decode(out:match("([^\n]+)\n$"))
    assert.are.equal("done", last.type)
    assert.are.equal(H.core.sha256("hello\n"), last.sha256)
    assert.are.equal(6, last.size)
    assert.are.equal("integer", math.type(last.size))
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
    local silent = assert(require("socket").udp()) -- takes the requests, answers none
    assert(silent:setsockname("127.0.0.1", 0))
    finally(function() silent:close() end)
    local t0 = H.core.now()
    local code, _, err = udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none --timeout 1 --out %s")
      :format(select(2, silent:getsockname()), dir .. "/out"))
    assert.are.equal(3, code)
    assert.matches("no server answered", err)
    assert.is_true(H.core.now() - t0 >= 1)
    assert.is_true(H.core.now() - t0 < 5)
  end)

  it("exits 3 at once when the host says nothing listens on a --server's port", function()
    for _, server in ipairs { "127.0.0.1", "[::1]" } do
      local t0 = H.core.now()
      local code, _, err = udpx(("get hello.txt --port 9 --server %s --broadcast none --timeout 10 --out %s")
        :format(server, dir .. "/out"))
      assert.are.equal(3, code)
      assert.matches("^udpxfer: hello%.txt: no server answered: nothing listens on [^ ]+:9 %(port unreachable%)\n$", err)
      assert.is_true(H.core.now() - t0 < 3, ("took %.1f s of a 10 s timeout"):format(H.core.now() - t0))
    end
  end)

  it("exits 2 with one line, no traceback, on a usage error or a bad value", function()
    for _, args in ipairs { "get", "frobnicate", "get x --port", "get x --bogus", "get x --port 70000",
      "get x --port 0", "get x --sha256 zz", "get x --timeout 0", "get x --timeout -1", "get x --chunk-size 10",
      "get x --chunk-size 999999", "serve --port -1", "recv --idle-timeout x" } do
      local code, out, err = udpx(args)
      assert.are.equal(2, code, args)
      assert.are.equal("", out, args)
      assert.matches("^udpxfer: [^\n]+\n$", err, args)
      assert.is_nil(err:find("traceback"), args)
    end
    local _, _, err = udpx("get x --port 70000")
    assert.matches("%-%-port must be an integer from 1 to 65535", err)
    _, _, err = udpx("get x --timeout -1")
    assert.matches("%-%-timeout must be a number of seconds above 0, not \"%-1\"", err)
    _, _, err = udpx("get x -p -5")
    assert.matches("%-%-port must be an integer from 1 to 65535, not \"%-5\"", err)
  end)

  it("exits 2 with the usage on stderr when there is no command, or help names none", function()
    for _, args in ipairs { "", "help nosuch" } do
      local code, out, err = udpx(args)
      assert.are.equal(2, code, args)
      assert.are.equal("", out, args)
      assert.matches("^Usage: udpxfer", err, args)
    end
    assert.matches('no command "nosuch"', select(3, udpx("help nosuch")))
    assert.are.equal(0, (udpx("help get")))
  end)

  it("says once that -o must be a folder for several names", function()
    local code, _, err = udpx(("get a b --port %d --server 127.0.0.1 --broadcast none -o %s/nofolder")
      :format(port, dir .. "/out"))
    assert.are.equal(2, code)
    assert.matches("^udpxfer: %-o [^\n]*nofolder must be a folder to take several files[^\n]*\n$", err)
  end)

  it("with --create-dirs, -o names a folder, made with the folders above it, also for get -r", function()
    local to = dir .. "/out/made/deeper"
    local code, out, err = udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none -o %s --create-dirs")
      :format(port, to))
    assert.are.equal(0, code, err)
    assert.are.equal(to .. "/hello.txt\n", out)
    assert.are.equal("hello\n", H.read(to .. "/hello.txt"))
    os.execute(("mkdir -p %s/srv/sub && echo s > %s/srv/sub/s.txt"):format(dir, dir))
    code, _, err = udpx(("get -r sub %s/out/r1/r2 --create-dirs --port %d --server 127.0.0.1 --broadcast none -q")
      :format(dir, port))
    assert.are.equal(0, code, err)
    assert.are.equal("s\n", H.read(dir .. "/out/r1/r2/s.txt"))
  end)

  it("get -o - --json writes only the file to stdout and the JSON lines to stderr", function()
    local code, out, err = udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none -o - --json"):format(port))
    assert.are.equal(0, code)
    assert.are.equal("hello\n", out)
    local last = json.decode(err:match("([^\n]+)\n$"))
    assert.are.equal("done", last.type)
  end)

  it("get of a folder says it is one and how to fetch it", function()
    os.execute(("mkdir -p %s/srv/afolder && echo x > %s/srv/afolder/x"):format(dir, dir))
    local code, _, err = udpx(("get afolder --port %d --server 127.0.0.1 --broadcast none -o %s"):format(port, dir .. "/out"))
    assert.are.equal(3, code)
    assert.matches("^udpxfer: afolder: [^\n]*a folder on the servers: udpxfer get %-r afolder DIR fetches it%)\n$", err)
  end)

  it("documents every option, per command: udpxfer get --help", function()
    local code, out = udpx("get --help")
    assert.are.equal(0, code)
    for _, o in ipairs { "--out", "--port", "--server", "--broadcast", "--timeout", "--chunk-size", "--sha256",
      "--idle-timeout", "--legacy", "--quiet", "--json" } do
      assert.matches(o:gsub("%-", "%%-"), out)
    end
    local _, top = udpx("--help")
    for _, c in ipairs { "serve", "get", "recv", "send" } do assert.matches(c, top) end
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

  it("serve --bind 127.0.0.1 hears broadcasts to 127.255.255.255 and no datagram for 127.0.0.2", function()
    local bpid, bport, bpipe = H.start_server(dir .. "/srv", "--bind 127.0.0.1")
    finally(function() H.kill(bpid); bpipe:close() end)
    local code, _, err = udpx(("get hello.txt --port %d --broadcast 127.255.255.255 -o %s/bound.txt -q")
      :format(bport, dir .. "/out"))
    assert.are.equal(0, code, err)
    assert.are.equal("hello\n", H.read(dir .. "/out/bound.txt"))
    code, _, err = udpx(("get hello.txt --port %d --server 127.0.0.2 --broadcast none --timeout 0.5 -o %s/not.txt -q")
      :format(bport, dir .. "/out"))
    assert.are.equal(3, code, err)
    assert.is_nil(H.read(dir .. "/out/not.txt"))
  end)

  it("serve --interface lo answers on loopback; an unknown interface is a one-line usage error", function()
    local ipid, iport, ipipe = H.start_server(dir .. "/srv", "--interface lo")
    finally(function() H.kill(ipid); ipipe:close() end)
    local code, _, err = udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none -o %s/lo.txt -q")
      :format(iport, dir .. "/out"))
    assert.are.equal(0, code, err)
    local out
    code, out, err = udpx(("serve %s --port 0 --interface nosuch0"):format(H.shell_quote(dir .. "/srv")))
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("^udpxfer: no such interface nosuch0", err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
    code, _, err = udpx(("serve %s --port 0 --interface a/b"):format(H.shell_quote(dir .. "/srv")))
    assert.are.equal(2, code)
    assert.matches("--interface must be a network interface name", err, 1, true)
  end)

  -- Spawn the command with stderr in a file; returns pid, stdout pipe, stderr file name.
  local function spawn_udpx(args)
    local errf = os.tmpname()
    local spid, sp = H.spawn(H.UDPXFER .. " " .. args .. " 2>" .. errf)
    return spid, sp, errf
  end

  -- The first server log event (decoded) of TYPE for NAME, or nil at the end of the log.
  local function server_event(type, name)
    for line in pipe:lines() do
      local ev = json.decode(line)
      if ev.type == type and ev.name == name then return ev end
    end
  end

  local function partials(name) return H.partials(dir .. "/out", name) end

  -- The JSON lines of a `get --json` until the first progress line with at least BYTES.
  local function await_bytes(p, bytes)
    for line in p:lines() do
      local ev = json.decode(line)
      if ev.type == "progress" and ev.bytes >= bytes then return ev end
    end
  end

  it("get exits 130 on SIGINT with one line, keeps the partial file, and the server logs 'aborted'", function()
    H.write_random(dir .. "/srv/slow.bin", 1500000)
    local gpid, gp, errf = spawn_udpx(("get slow.bin --port %d --server 127.0.0.1 --broadcast none "
      .. "--limit-rate 100K -o %s/slow.bin --json"):format(port, dir .. "/out"))
    assert.is_table(await_bytes(gp, 1), "chunks arrived before the signal")
    H.kill(gpid, "INT")
    gp:read("a")
    local _, how, code = gp:close()
    local err = H.read(errf)
    os.remove(errf)
    assert.are.same({ "exit", 130 }, { how, code })
    assert.are.equal("udpxfer: slow.bin: interrupted\n", err)
    assert.is_nil(H.read(dir .. "/out/slow.bin"))
    assert.are.equal(1, #partials("slow.bin"))
    assert.are.equal("aborted", server_event("done", "slow.bin").reason)
    -- run again, it completes from the partial file and removes it
    local rc, out = udpx(("get slow.bin --port %d --server 127.0.0.1 --broadcast none -o %s --json")
      :format(port, dir .. "/out"))
    assert.are.equal(0, rc)
    local done = json.decode(out:match("[^\n]+\n?$"))
    assert.are.equal(1500000, done.bytes_fetched + done.bytes_reused)
    assert.is_true(H.read(dir .. "/srv/slow.bin") == H.read(dir .. "/out/slow.bin"))
    assert.are.same({}, partials("slow.bin"))
  end)

  it("a SIGKILLed fetch of 512 MiB, run again, fetches at most 60% of it", function()
    local MiB = 1024 * 1024
    H.write_random(dir .. "/srv/huge.bin", 512 * MiB)
    local gpid, gp, errf = spawn_udpx(("get huge.bin --port %d --server 127.0.0.1 --broadcast none "
      .. "--limit-rate 200M -o %s --json"):format(port, dir .. "/out"))
    local at = await_bytes(gp, 256 * MiB)
    H.kill(gpid, "KILL")
    gp:read("a")
    gp:close()
    os.remove(errf)
    assert.is_table(at, "half the file arrived before the kill")
    assert.are.equal(1, #partials("huge.bin"))
    local rc, out = udpx(("get huge.bin --port %d --server 127.0.0.1 --broadcast none -o %s --json")
      :format(port, dir .. "/out"))
    assert.are.equal(0, rc)
    local done = json.decode(out:match("[^\n]+\n?$"))
    print(("\n# killed at %d MiB; run again: %d MiB fetched, %d MiB from the partial file"):format(
      at.bytes // MiB, done.bytes_fetched // MiB, done.bytes_reused // MiB))
    assert.is_true(done.bytes_fetched <= 0.6 * 512 * MiB, done.bytes_fetched .. " bytes fetched again")
    assert.are.equal(512 * MiB, done.bytes_fetched + done.bytes_reused)
    assert.are.equal(H.core.sha256_file(dir .. "/srv/huge.bin"), H.core.sha256_file(dir .. "/out/huge.bin"))
    assert.are.same({}, partials("huge.bin"))
    os.remove(dir .. "/out/huge.bin")
    os.remove(dir .. "/srv/huge.bin")
  end)

  it("serve logs a requested name with a newline and a terminal escape as one escaped line", function()
    local spid, sp = H.spawn(H.UDPXFER .. " serve " .. H.shell_quote(dir .. "/srv") .. " --port 0")
    local sport = tonumber(sp:read("l"):match("UDP port (%d+)"))
    local forged = 'x\n2026-12-01T00:00:00Z done 10.9.9.9:1 "secret" ok\27[2J'
    local code = udpx(("get %s --port %d --server 127.0.0.1 --broadcast none --timeout 2 -o %s -q")
      :format(H.shell_quote(forged), sport, dir .. "/out"))
    local line = sp:read("l")
    H.kill(spid)
    sp:read("a")
    sp:close()
    assert.are.equal(3, code)
    assert.matches(' request 127%.0%.0%.1:%d+ "x\\n2026%-12%-01T00:00:00Z done 10%.9%.9%.9:1 \\"secret\\" ok\\x1b%[2J" notfound$',
      line)
  end)

  it("serve exits 143 on SIGTERM", function()
    local spid, sp, errf = spawn_udpx(("serve %s --port 0 --json"):format(H.shell_quote(dir .. "/srv")))
    assert.matches('"type":"listening"', sp:read("l"))
    H.kill(spid, "TERM")
    sp:read("a")
    local _, how, code = sp:close()
    local err = H.read(errf)
    os.remove(errf)
    assert.are.same({ "exit", 143 }, { how, code })
    assert.are.equal("", err)
  end)

  it("serve on a port another server holds fails at once, in one line, and the first keeps serving", function()
    os.execute("mkdir -p " .. dir .. "/other")
    H.write(dir .. "/other/hello.txt", "impostor\n")
    for _, bind in ipairs { "", " --bind 127.0.0.1" } do
      -- bounded: a serve that starts would run until killed
      local code, out, err = H.run(("timeout 10 %s serve %s --port %d%s"):format(H.UDPXFER,
        H.shell_quote(dir .. "/other"), port, bind))
      assert.are.equal(5, code)
      assert.are.equal("", out)
      assert.matches(("^udpxfer: UDP port %d is in use on [%%d.:]+ %%(another server%%?%%)\n$"):format(port), err)
    end
    local code = udpx(("get hello.txt --port %d --server 127.0.0.1 --broadcast none -o %s/first.txt -q")
      :format(port, dir .. "/out"))
    assert.are.equal(0, code)
    assert.are.equal("hello\n", H.read(dir .. "/out/first.txt"))
  end)

  it("logs a request once, however often a client asks in its discovery rounds", function()
    -- two targets (broadcast and unicast) reaching the same server, several rounds: one line
    H.write(dir .. "/srv/once.txt", "once\n")
    udpx(("get nope-once.txt --port %d --server 127.0.0.1 --broadcast 127.255.255.255 --timeout 1 --out %s -q")
      :format(port, dir .. "/out"))
    udpx(("get once.txt --port %d --server 127.0.0.1 --broadcast none --out %s -q"):format(port, dir .. "/out"))
    local misses, requests = 0, 0
    for _ = 1, 500 do
      local line = pipe:read("l")
      if not line then break end
      if line:match('"name":"nope%-once.txt"') then misses = misses + 1 end
      if line:match('"type":"request"') and line:match('"name":"once.txt"') then requests = requests + 1 end
      if line:match('"type":"done"') and line:match('"name":"once.txt"') then break end
    end
    assert.are.equal(1, misses)
    assert.are.equal(1, requests)
  end)
  it("get says a server is preparing a large file, waits, and fetches it; the server logs 'preparing'", function()
    os.execute("truncate -s 80M " .. dir .. "/srv/large.bin") -- sparse, and over async_hash_min (64 MiB)
    local code, out, err = udpx(("get large.bin --port %d --server 127.0.0.1 --broadcast none --out %s")
      :format(port, dir .. "/out"))
    assert.are.equal(0, code, err)
    assert.are.equal(dir .. "/out/large.bin\n", out)
    assert.matches("server 127%.0%.0%.1:%d+ is preparing large%.bin %(hashing it%); waiting", err)
    assert.are.equal(H.core.sha256_file(dir .. "/srv/large.bin"), H.core.sha256_file(dir .. "/out/large.bin"))
    local preparing = false
    for _ = 1, 200 do
      local line = pipe:read("l")
      if not line then break end
      if line:match('"name":"large.bin"') and line:match('"status":"preparing"') then preparing = true end
      if line:match('"type":"done"') and line:match('"name":"large.bin"') then break end
    end
    assert.is_true(preparing)
    os.remove(dir .. "/srv/large.bin")
    os.remove(dir .. "/out/large.bin")
  end)

  it("parses options in both --opt value and --opt=value forms", function()
    local opt = assert(cli.parse { "get", "a", "--port=7", "--server", "h1", "--server=h2", "-q" })
    assert.are.equal("get", opt.command)
    assert.are.same({ "a" }, opt.name)
    assert.are.equal(7, opt.port)
    assert.are.same({ "h1", "h2" }, opt.server)
    assert.is_true(opt.quiet)
  end)

  it("get fetches again checking each chunk against the tree when a server lies (lie=100), and says so", function()
    -- Large enough that both servers surely feed the first attempt.
    H.write_random(dir .. "/srv/lie.bin", 8 * 1024 * 1024)
    local lpid, lport, lpipe = H.start_server(dir .. "/srv", "", "UDPXFER_TEST_FAULTS=lie=100")
    os.execute("mkdir -p " .. dir .. "/out2")
    local code, out, err = udpx(("get lie.bin --server 127.0.0.1:%d --server 127.0.0.1:%d --broadcast none --out %s")
      :format(port, lport, dir .. "/out2"))
    H.kill(lpid)
    lpipe:close()
    assert.are.equal(0, code, err)
    assert.are.equal(dir .. "/out2/lie.bin\n", out)
    assert.matches("whole%-file SHA%-256 mismatch; fetching again, every chunk checked against the file's tree", err)
    assert.matches(("dropped server 127%%.0%%.0%%.1:%d %%(corrupt%%)"):format(lport), err)
    assert.is_true(H.read(dir .. "/srv/lie.bin") == H.read(dir .. "/out2/lie.bin"))
  end)
  it("get against a file already at the destination moves the chunk that changed; --json says what travelled", function()
    local MiB = 1024 * 1024
    H.write_random(dir .. "/srv/basis.bin", 4 * MiB)
    local new = H.read(dir .. "/srv/basis.bin")
    local function change(at)
      H.write(dir .. "/out/basis.bin", new:sub(1, at) .. string.char((new:byte(at + 1) + 1) % 256) .. new:sub(at + 2))
    end
    local args = ("get basis.bin --port %d --server 127.0.0.1 --broadcast none -o %s"):format(port, dir .. "/out")
    change(3 * MiB + 5)
    local code, out, err = udpx(args .. " --json")
    assert.are.equal(0, code, err)
    local done = json.decode(out:match("([^\n]+)\n$"))
    assert.are.same({ 16384, 4 * MiB - 16384 }, { done.bytes_fetched, done.bytes_reused })
    assert.is_true(done.bytes_wire > 16384 and done.bytes_wire < 64 * 1024, done.bytes_wire .. " bytes on the wire")
    assert.is_true(new == H.read(dir .. "/out/basis.bin"))
    change(5)
    code, _, err = udpx(args)
    assert.are.equal(0, code, err)
    assert.matches(", from 1 server, 4%.0 MiB reused\n$", err)
    assert.is_true(new == H.read(dir .. "/out/basis.bin"))
  end)

  it("get exits 5 in one line for a folder, symlink, FIFO or unreadable file at the destination, leaving it; --force replaces all but the folder", function()
    local to = dir .. "/dest"
    os.execute(("mkdir -p %s/f-dir && cd %s && ln -s ../srv/hello.txt f-link && mkfifo f-fifo && echo old > f-unread "
      .. "&& chmod 000 f-unread && chmod 777 . && chmod 755 .."):format(to, to))
    for _, n in ipairs { "f-dir", "f-link", "f-fifo", "f-unread" } do H.write(dir .. "/srv/" .. n, "new " .. n .. "\n") end
    -- root reads any file: the unreadable one is fetched as nobody
    local nobody = H.is_root() and "setpriv --reuid=65534 --regid=65534 --clear-groups " or ""
    local function get(n, extra)
      return H.run(("%s%s get %s --port %d --server 127.0.0.1 --broadcast none -o %s %s"):format(
        n == "f-unread" and nobody or "", H.UDPXFER, n, port, to, extra or ""))
    end
    local why = { ["f-dir"] = "is a folder: not replaced",
      ["f-link"] = "is a symbolic link: not followed, and not replaced unless forced",
      ["f-fifo"] = "is a FIFO: not written into, and not replaced unless forced",
      ["f-unread"] = "cannot be read (Permission denied): not replaced unless forced" }
    for n, msg in pairs(why) do
      local code, out, err = get(n)
      assert.are.same({ 5, "", ("udpxfer: %s/%s %s\n"):format(to, n, msg) }, { code, out, err })
    end
    assert.are.same({ "directory", "symbolic link", "fifo", "regular file" },
      { H.file_type(to .. "/f-dir"), H.file_type(to .. "/f-link"), H.file_type(to .. "/f-fifo"), H.file_type(to .. "/f-unread") })
    assert.are.equal("hello\n", H.read(dir .. "/srv/hello.txt"))
    local code, _, err = get("f-dir", "--force")
    assert.are.same({ 5, ("udpxfer: %s/f-dir %s\n"):format(to, why["f-dir"]) }, { code, err })
    for _, n in ipairs { "f-link", "f-fifo", "f-unread" } do
      code, _, err = get(n, "--force -q")
      assert.are.same({ 0, "" }, { code, err })
      assert.are.equal("regular file", H.file_type(to .. "/" .. n))
      assert.are.equal("new " .. n .. "\n", H.read(to .. "/" .. n))
    end
    assert.are.equal("hello\n", H.read(dir .. "/srv/hello.txt"))
  end)

  it("get --help says what becomes of a file already at the destination, and what --force replaces", function()
    local code, out = udpx("get --help")
    assert.are.equal(0, code)
    assert.matches("A file already at the destination is the local copy", out, 1, true)
    assert.matches("symlink (the link, not its target), FIFO, device or unreadable file; never a folder", out, 1, true)
  end)
end)

describe("udpxfer send / recv (stream mode)", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmrf(dir) end)

  local q = H.shell_quote

  --- Start `udpxfer recv` writing to OUT; its stderr is the returned pipe.
  -- Returns pid, port, pipe (the first line names the port).
  local function start_recv(out, extra, port)
    local pid, p = H.spawn(("%s recv --port %d --bind 127.0.0.1 %s 2>&1 >%s"):format(
      H.UDPXFER, port or 0, extra or "", q(out)))
    local line = p:read("l")
    local port = line and tonumber(line:match("UDP port (%d+)"))
    assert(port, "receiver did not start: " .. tostring(line))
    return pid, port, p
  end

  --- Read a process's pipe to its end; returns the text and the exit code.
  local function finish(p)
    local text = p:read("a")
    local _, _, code = p:close()
    return text, code
  end

  local function free_port()
    local r = assert(H.udpxfer.recv { port = 0, bind = "127.0.0.1" })
    local port = r:port()
    r:close()
    return port
  end

  it("pipes 100 MiB of random bytes from send's stdin to recv's stdout, byte-identical", function()
    local src, out = dir .. "/big.in", dir .. "/big.out"
    H.write_random(src, 100 * 1048576)
    local _, port, p = start_recv(out)
    local code, _, err = H.run(("cat %s | %s send 127.0.0.1:%d"):format(q(src), H.UDPXFER, port))
    assert.are.equal(0, code, err)
    local text, rcode = finish(p)
    assert.are.equal(0, rcode, text)
    assert.matches("received 100.0 MiB", text)
    assert.are.equal(H.core.sha256_file(src), H.core.sha256_file(out))
    assert.matches("sent 100.0 MiB", err)
  end)

  for _, case in ipairs {
    { "an empty input", "" },
    { "one byte", "x" },
    { "NUL bytes and invalid UTF-8", ("\0\255\0\192\128\237\160\128\254"):rep(1000) .. "\0" },
  } do
    it("carries " .. case[1], function()
      local src, out = dir .. "/small.in", dir .. "/small.out"
      H.write(src, case[2])
      local _, port, p = start_recv(out)
      local code, _, err = H.run(("%s send 127.0.0.1:%d -q < %s"):format(H.UDPXFER, port, q(src)))
      assert.are.equal(0, code, err)
      assert.are.equal("", err, "-q keeps stderr quiet")
      local text, rcode = finish(p)
      assert.are.equal(0, rcode, text)
      assert.is_true(H.read(out) == case[2])
    end)
  end

  it("connects to a receiver started after the sender, and -v logs SEND/RECV like the seed", function()
    local src, out = dir .. "/late.in", dir .. "/late.out"
    H.write_random(src, 3000000)
    local port = free_port()
    local _, sp = H.spawn(("%s send 127.0.0.1:%d -v < %s 2>&1"):format(H.UDPXFER, port, q(src)))
    local first = sp:read("l") -- the first SYN goes out before any receiver exists
    assert.matches("^SEND 0 0 %x+ SYN$", first)
    local _, _, rp = start_recv(out, nil, port)
    local log, code = finish(sp)
    assert.are.equal(0, code, log)
    assert.matches("SEND 0 0 %x+ SYN DUP", log)
    assert.matches("RECV 0 0 %x+ SYN ACK", log)
    assert.matches("SEND 0 0 %x+ DATA len=%d+", log)
    assert.matches("RECV 0 3000000 %x+ ACK FIN", log)
    local text, rcode = finish(rp)
    assert.are.equal(0, rcode, text)
    assert.are.equal(H.core.sha256_file(src), H.core.sha256_file(out))
  end)

  it("a sender killed mid-stream: recv reports a broken stream, exits non-zero, keeps an exact prefix", function()
    local fifo, out = dir .. "/feed", dir .. "/killed.out"
    os.execute("mkfifo " .. q(fifo))
    local _, port, rp = start_recv(out, "--idle-timeout 1 -v")
    local spid, sp = H.spawn(("%s send 127.0.0.1:%d -q < %s"):format(H.UDPXFER, port, q(fifo)))
    local feed = assert(io.open(fifo, "wb"))
    local data = H.bytes(200000, 77)
    feed:write(data)
    feed:flush()
    -- Wait for the receiver to see data, then a second sender is turned away.
    local seen = {}
    repeat
      local line = rp:read("l")
      seen[#seen + 1] = line
    until not line or line:match("^RECV %d+ 0 %x+ DATA")
    local bcode, _, berr = H.run(("%s send 127.0.0.1:%d -q --timeout 5 < /dev/null"):format(H.UDPXFER, port))
    assert.are.equal(1, bcode)
    assert.matches("busy", berr)
    H.kill(spid, "KILL")
    finish(sp)
    feed:close()
    local text, rcode = finish(rp)
    text = table.concat(seen, "\n") .. text
    assert.are.equal(1, rcode)
    assert.matches("broken stream", text)
    assert.matches("DROP 0 0 %x+ SYN other%-connection", text)
    local got = H.read(out)
    assert.is_true(#got <= #data and got == data:sub(1, #got))
  end)

  it("send exits 130 on SIGINT and tells the receiver, which reports the sender aborted", function()
    local fifo, out = dir .. "/int-feed", dir .. "/int.out"
    os.execute("mkfifo " .. q(fifo))
    local _, port, rp = start_recv(out, "--idle-timeout 60 -v")
    local errf = os.tmpname()
    local spid, sp = H.spawn(("%s send 127.0.0.1:%d -q < %s 2>%s"):format(H.UDPXFER, port, q(fifo), errf))
    local feed = assert(io.open(fifo, "wb"))
    feed:write(H.bytes(100000, 5))
    feed:flush()
    local seen = {}
    repeat
      local line = rp:read("l")
      seen[#seen + 1] = line
    until not line or line:match("^RECV %d+ 0 %x+ DATA")
    H.kill(spid, "INT")
    local _, _, scode = sp:close()
    feed:close()
    local serr = H.read(errf)
    os.remove(errf)
    assert.are.equal(130, scode)
    assert.are.equal("udpxfer: interrupted\n", serr)
    local text, rcode = finish(rp)
    assert.are.equal(1, rcode)
    assert.matches("broken stream: the sender aborted", text)
  end)

  it("recv exits 143 on SIGTERM with one line", function()
    local pid, _, p = start_recv(dir .. "/term.out")
    H.kill(pid, "TERM")
    local text, code = finish(p)
    assert.are.equal(143, code)
    assert.are.equal("udpxfer: terminated\n", text)
  end)

  it("send exits 3 within --timeout when no receiver answers", function()
    local code, _, err = H.run(("%s send 127.0.0.1:%d --timeout 1 < /dev/null"):format(H.UDPXFER, free_port()))
    assert.are.equal(3, code)
    assert.matches("no receiver answered within 1 s", err)
  end)

  it("recv exits 3 when no sender comes within --timeout, and 2 on usage errors", function()
    local code, _, err = H.run(("%s recv --port 0 --bind 127.0.0.1 --timeout 1 >/dev/null"):format(H.UDPXFER))
    assert.are.equal(3, code)
    assert.matches("no sender connected", err)
    assert.are.equal(2, (H.run(H.UDPXFER .. " send")))
    assert.are.equal(2, (H.run(H.UDPXFER .. " recv extra")))
  end)
end)
