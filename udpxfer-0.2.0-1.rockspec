rockspec_format = "3.0"
package = "udpxfer"
version = "0.2.0-1"
source = {
  url = "https://example.invalid/udpxfer/udpxfer-0.2.0.tar.gz", -- the release archive (make rock builds it)
  dir = "udpxfer-0.2.0",
}
description = {
  summary = "Reliable, fast file transfer and folder sync over UDP on a LAN",
  detailed = [[
    A C protocol engine (chunked, verified with SHA-256, several servers at
    once) exposed as a Lua 5.4 module, with pollable serve/get objects, a
    stream mode (send/recv: stdin on one host to stdout on another) and a CLI.
  ]],
  license = "MIT",
}
-- Debian's lua-argparse and lua-dkjson provide these (.luarocks/config-5.4.lua
-- says so in a checkout; elsewhere install with --deps-mode=none).
dependencies = { "lua >= 5.4", "argparse >= 0.6", "dkjson >= 2.5" }
external_dependencies = {
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
-- The C sources and the Lua modules are listed once, in the Makefile
-- (every .c of csrc/engine, csrc/host and csrc/lua; every lua/udpxfer/*.lua).
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LUA = "$(LUA)", LUA_INCDIR = "$(LUA_INCDIR)",
    OPENSSL_INCDIR = "$(OPENSSL_INCDIR)", OPENSSL_LIBDIR = "$(OPENSSL_LIBDIR)",
  },
  install_target = "rock-install",
  install_variables = { INST_LUADIR = "$(LUADIR)", INST_LIBDIR = "$(LIBDIR)" },
  install = {
    bin = { udpxfer = "bin/udpxfer" },
  },
  copy_directories = { "examples" }, -- into the rock's folder: luarocks show udpxfer
}
-- busted from Debian (lua-busted) through the project runner: no rocks fetched
test = { type = "command", command = "bash tools/run-tests.sh" }
