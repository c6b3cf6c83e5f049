# udpxfer: C engine + Lua 5.4 module.  `make help` lists the targets.
#
# One source list: every .c file of csrc/engine, csrc/host and csrc/lua.
# The rockspec builds through this Makefile; the fuzzers and C tests link
# the engine (and host) archives made from the same lists.
LUA        ?= lua5.4
# Lua's headers and static library, as pkg-config knows them (Debian's
# liblua5.4-dev), else Debian's paths.
LUA_PC      = $(shell pkg-config --silence-errors --cflags-only-I lua5.4)
LUA_INCDIR ?= $(if $(LUA_PC),$(patsubst -I%,%,$(firstword $(LUA_PC))),/usr/include/lua5.4)
LUA_LIBDIR ?= $(or $(shell pkg-config --silence-errors --variable=libdir lua5.4),/usr/lib/$(shell $(CC) -dumpmachine))
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN        = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
# -MMD: each object's header dependencies, read back below
BASE        = $(WARN) -std=gnu11 -D_GNU_SOURCE -MMD -MP -fPIC -fvisibility=hidden -Icsrc $(if $(OPENSSL_INCDIR),-I$(OPENSSL_INCDIR))
LDLIBS      = $(if $(OPENSSL_LIBDIR),-L$(OPENSSL_LIBDIR)) -lcrypto -lpthread
SANITIZE    = -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all

ENGINE_SRC := $(sort $(wildcard csrc/engine/*.c))
HOST_SRC   := $(sort $(wildcard csrc/host/*.c))
LUA_SRC    := $(sort $(wildcard csrc/lua/*.c))
SO          = lua/udpxfer/core.so
ASAN_SO     = build/asan/udpxfer/core.so
BUSTED      = $(LUA) /usr/bin/busted
# Prerequisites are expanded as rules are read: these come before any rule.
FUZZ_TARGETS = fuzz_wire fuzz_client fuzz_server fuzz_stream
FUZZERS = $(addprefix build/,$(FUZZ_TARGETS))
SMOKES = $(addprefix build/smoke_,$(FUZZ_TARGETS))

.PHONY: all deps test test-lan bench demo asan fuzz valgrind clean help lint rock rock-install

all: $(SO)

help:
	@echo "make          build lua/udpxfer/core.so"
	@echo "make demo     build, serve a sample folder, fetch a file over loopback, verify it"
	@echo "make test     all tests (installs missing Debian packages first)"
	@echo "make test-lan parallel servers on an emulated LAN (root, network namespaces)"
	@echo "make bench    benchmarks (loopback, emulated LAN; writes bench/RESULTS.md)"
	@echo "make asan     the tests against an AddressSanitizer/UBSan build, leaks checked"
	@echo "make valgrind one loopback transfer under valgrind (no errors, nothing lost)"
	@echo "make fuzz     fuzz every parser and engine (libFuzzer; FUZZ_SECONDS=60)"
	@echo "make lint     cppcheck, and the layers: engine and host never see lua.h"

# Installs what is missing, from Debian's archive only.
deps:
	@sh tools/deps.sh

# Objects per variant (VARIANT, extra flags): the engine and host layers are
# compiled without Lua's headers on the include path, so they cannot use them.
define objects
$(1)_ENGINE := $$(patsubst csrc/%.c,build/$(1)/%.o,$$(ENGINE_SRC))
$(1)_HOST   := $$(patsubst csrc/%.c,build/$(1)/%.o,$$(HOST_SRC))
$(1)_LUA    := $$(patsubst csrc/%.c,build/$(1)/%.o,$$(LUA_SRC))
build/$(1)/engine/%.o: csrc/engine/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(BASE) -c $$< -o $$@
build/$(1)/host/%.o: csrc/host/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(BASE) -c $$< -o $$@
build/$(1)/lua/%.o: csrc/lua/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(BASE) -I$$(LUA_INCDIR) -c $$< -o $$@
build/$(1)/libengine.a: $$($(1)_ENGINE)
	rm -f $$@ && ar rcs $$@ $$^
build/$(1)/libhost.a: $$($(1)_HOST)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call objects,rel,$(CFLAGS)))
$(eval $(call objects,san,-O1 -g $(SANITIZE)))

$(SO): $(rel_LUA) build/rel/libhost.a build/rel/libengine.a
	$(CC) -shared -o $@ $(rel_LUA) build/rel/libhost.a build/rel/libengine.a $(LDLIBS)

$(ASAN_SO): $(san_LUA) build/san/libhost.a build/san/libengine.a
	@mkdir -p $(dir $@)
	$(CC) -shared $(SANITIZE) -o $@ $(san_LUA) build/san/libhost.a build/san/libengine.a $(LDLIBS)

test: deps all $(SMOKES) build/sink_test build/client_test build/swapper
	@bash tools/run-tests.sh

# The emulated-LAN cases alone (root and ip netns; they skip with a message elsewhere).
test-lan: deps all
	@bash tools/run-tests.sh spec/lan_spec.lua

bench: all
	@sh tools/deps.sh bench
	@bash bench/run.sh

demo: deps all
	@sh examples/demo.sh

# The whole suite against the sanitised build, leaks checked, in Lua
# processes run by a sanitised interpreter (the specs' shell tools are not).
asan: deps $(ASAN_SO) build/lua-asan $(SMOKES) build/sink_test build/client_test build/swapper
	@UDPXFER_CPATH="build/asan/?.so" UDPXFER_LUA=$(CURDIR)/build/lua-asan \
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 bash tools/run-tests.sh

# A Lua interpreter linked with the sanitisers (csrc/test/lua_asan.c).
build/lua-asan: csrc/test/lua_asan.c
	@mkdir -p build
	$(CC) $(WARN) -std=gnu11 -g -O1 $(SANITIZE) -I$(LUA_INCDIR) -o $@ $< -Wl,-E -Wl,--whole-archive \
	  $(LUA_LIBDIR)/liblua5.4.a -Wl,--no-whole-archive -lm -ldl

valgrind: deps all
	@sh tools/valgrind.sh


# libFuzzer when clang has it, else the standalone driver (gcc + ASan/UBSan).
build/fuzz_%: csrc/fuzz/fuzz_%.c csrc/fuzz/fuzz_common.h $(ENGINE_SRC) $(wildcard csrc/engine/*.h)
	@mkdir -p build
	@if command -v clang >/dev/null 2>&1 && \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc -o $@ $< $(ENGINE_SRC) -lcrypto 2>/dev/null; then \
	  echo "built $@ with libFuzzer"; \
	else \
	  $(CC) -g -O1 $(SANITIZE) -DUX_STANDALONE_FUZZ -Icsrc -o $@ $< $(ENGINE_SRC) -lcrypto; \
	  echo "built $@ with the standalone driver"; \
	fi

# The standalone driver, always: the bounded runs `make test` includes.
build/smoke_%: csrc/fuzz/%.c csrc/fuzz/fuzz_common.h build/san/libengine.a $(wildcard csrc/engine/*.h)
	$(CC) $(WARN) -std=gnu11 -g -O1 $(SANITIZE) -DUX_STANDALONE_FUZZ -Icsrc -o $@ $< build/san/libengine.a -lcrypto

# The sink with its hash thread held at a gate (spec/sink_spec.lua).
build/sink_test: csrc/test/sink_test.c build/san/libhost.a build/san/libengine.a $(wildcard csrc/*/*.h)
	$(CC) $(WARN) -std=gnu11 -g -O1 $(SANITIZE) -Icsrc -o $@ $< build/san/libhost.a build/san/libengine.a $(LDLIBS)

# A hostile local user swapping two entries of a folder (spec/sync_local_spec.lua).
build/swapper: csrc/test/swapper.c
	@mkdir -p build
	$(CC) $(WARN) -std=gnu11 -D_GNU_SOURCE -O2 -o $@ $<

# The client engine handing a chunk back (spec/engine_spec.lua).
build/client_test: csrc/test/client_test.c build/san/libengine.a $(wildcard csrc/engine/*.h)
	$(CC) $(WARN) -std=gnu11 -g -O1 $(SANITIZE) -Icsrc -o $@ $< build/san/libengine.a -lcrypto

fuzz:
	@sh tools/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZERS)
	@for f in $(FUZZERS); do mkdir -p build/corpus/$${f#build/}; \
	  ./$$f -max_total_time=$${FUZZ_SECONDS:-60} build/corpus/$${f#build/} csrc/fuzz/corpus/$${f#build/} || exit 1; done

lint:
	cppcheck --quiet --enable=warning,performance --error-exitcode=1 -Icsrc $(ENGINE_SRC) $(HOST_SRC) $(LUA_SRC)
	@sh tools/layers.sh

# What luarocks installs (udpxfer-*.rockspec: install_target).
rock-install: all
	mkdir -p $(INST_LUADIR)/udpxfer $(INST_LIBDIR)/udpxfer
	cp lua/udpxfer/*.lua $(INST_LUADIR)/udpxfer/
	cp $(SO) $(INST_LIBDIR)/udpxfer/

# A source rock for offline installs: luarocks --lua-version 5.4 install ./udpxfer-*.src.rock
rock:
	@sh tools/rock.sh

clean:
	rm -rf build $(SO)

-include $(wildcard build/*/*/*.d)
