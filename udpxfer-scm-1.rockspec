rockspec_format = "3.0"
package = "udpxfer"
version = "scm-1"
source = {
  url = "git+file:///udpxfer", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Reliable, fast file transfer over UDP on a LAN",
  detailed = [[
    A C protocol engine (chunked, verified with SHA-256, multi-server) exposed
    as a Lua 5.4 module, with pollable serve/get objects, a stream mode
    (send/recv: stdin on one host to stdout on another) and a CLI.
  ]],
  license = "MIT",
}
dependencies = { "lua >= 5.4" }
external_dependencies = {
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["udpxfer.core"] = {
      sources = {
        "csrc/wire.c", "csrc/legacy.c", "csrc/chunkmap.c", "csrc/hash.c", "csrc/addr.c", "csrc/client.c",
        "csrc/server.c", "csrc/fileset.c", "csrc/hcache.c", "csrc/sink.c", "csrc/net.c", "csrc/stream.c",
        "csrc/stream_send.c", "csrc/stream_recv.c", "csrc/fdio.c", "csrc/ludpxfer.c", "csrc/lstream.c",
      },
      libraries = { "crypto" },
      incdirs = { "$(OPENSSL_INCDIR)", "csrc" },
      libdirs = { "$(OPENSSL_LIBDIR)" },
    },
    udpxfer = "lua/udpxfer/init.lua",
    ["udpxfer.cli"] = "lua/udpxfer/cli.lua",
    ["udpxfer.json"] = "lua/udpxfer/json.lua",
    ["udpxfer.liars"] = "lua/udpxfer/liars.lua",
    ["udpxfer.progress"] = "lua/udpxfer/progress.lua",
  },
  install = {
    bin = { udpxfer = "bin/udpxfer" },
  },
}
test = { type = "busted" }
