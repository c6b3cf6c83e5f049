-- In a checkout: the Lua dependencies come from Debian's packages
-- (lua-argparse, lua-dkjson; make deps), not from a rocks server.
rocks_provided = { argparse = "0.7.1-1", dkjson = "2.6-1" }
