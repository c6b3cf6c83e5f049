# udpxfer: C engine + Lua 5.4 module.  `make help` lists the targets.
LUA        ?= lua5.4
LUA_INC    ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CC         ?= cc
WARN        = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS     ?= -O2 -g
ALL_CFLAGS  = $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden $(LUA_INC)
LDLIBS      = -lcrypto -lpthread

ENGINE_SRC  = csrc/wire.c csrc/legacy.c csrc/chunkmap.c csrc/hash.c csrc/addr.c csrc/client.c \
              csrc/server.c csrc/fileset.c csrc/hcache.c csrc/sink.c csrc/net.c csrc/stream.c \
              csrc/stream_send.c csrc/stream_recv.c csrc/fdio.c
SRC         = $(ENGINE_SRC) csrc/ludpxfer.c csrc/lstream.c
HDR         = $(wildcard csrc/*.h)
SO          = lua/udpxfer/core.so
ASAN_SO     = build/asan/udpxfer/core.so
BUSTED      = $(LUA) /usr/bin/busted

.PHONY: all deps test test-lan bench demo asan fuzz clean help install lint

all: $(SO)

help:
	@echo "make          build lua/udpxfer/core.so"
	@echo "make demo     build, serve a sample folder, fetch a file over loopback, verify it"
	@echo "make test     all tests (installs missing Debian packages first)"
	@echo "make test-lan parallel servers on an emulated LAN (root, network namespaces)"
	@echo "make bench    benchmarks (loopback, emulated LAN; writes bench/RESULTS.md)"
	@echo "make asan     the tests against an AddressSanitizer/UBSan build"
	@echo "make fuzz     fuzz the wire decoder (libFuzzer when clang has it)"

# Installs what is missing, from Debian's archive only.
deps:
	@sh tools/deps.sh

$(SO): $(SRC) $(HDR)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SRC) $(LDLIBS)

$(ASAN_SO): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -std=gnu11 -O1 -g -fPIC -fvisibility=hidden -fsanitize=address,undefined \
	  -fno-omit-frame-pointer $(LUA_INC) -shared -o $@ $(SRC) $(LDLIBS)

test: deps all
	@bash tools/run-tests.sh

# The emulated-LAN cases alone (root and ip netns; they skip with a message elsewhere).
test-lan: deps all
	@bash tools/run-tests.sh spec/lan_spec.lua

bench: all
	@sh tools/deps.sh bench
	@bash bench/run.sh

demo: deps all
	@sh examples/demo.sh

asan: deps $(ASAN_SO)
	@UDPXFER_CPATH="build/asan/?.so" \
	 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 bash tools/run-tests.sh

FUZZ_SRC    = csrc/fuzz/fuzz_wire.c $(ENGINE_SRC)

# libFuzzer when clang has it, else a self-contained mutation driver (gcc + ASan/UBSan).
build/fuzz_wire: $(FUZZ_SRC) $(HDR)
	@mkdir -p build
	@if command -v clang >/dev/null 2>&1 && \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc -o $@ $(FUZZ_SRC) -lcrypto 2>/dev/null; then \
	  echo "built $@ with libFuzzer"; \
	else \
	  $(CC) -g -O1 -fsanitize=address,undefined -DUX_STANDALONE_FUZZ -Icsrc -o $@ $(FUZZ_SRC) -lcrypto; \
	  echo "built $@ with the standalone driver"; \
	fi

# Standalone driver, always: a bounded smoke run that `make test` includes.
build/fuzz_smoke: $(FUZZ_SRC) $(HDR)
	@mkdir -p build
	$(CC) -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -DUX_STANDALONE_FUZZ -Icsrc -o $@ $(FUZZ_SRC) -lcrypto

# The sink with its hash thread held at a gate (spec/sink_spec.lua).
build/sink_test: csrc/test/sink_test.c $(ENGINE_SRC) $(HDR)
	@mkdir -p build
	$(CC) $(WARN) -std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Icsrc \
	  -o $@ csrc/test/sink_test.c $(ENGINE_SRC) $(LDLIBS)

# The client engine handing a chunk back (spec/engine_spec.lua).
build/client_test: csrc/test/client_test.c $(ENGINE_SRC) $(HDR)
	@mkdir -p build
	$(CC) $(WARN) -std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Icsrc \
	  -o $@ csrc/test/client_test.c $(ENGINE_SRC) $(LDLIBS)

fuzz: build/fuzz_wire
	@mkdir -p build/corpus
	./build/fuzz_wire -max_total_time=$${FUZZ_SECONDS:-60} build/corpus

lint:
	cppcheck --quiet --enable=warning,performance --error-exitcode=1 $(SRC)

install: all
	luarocks make --local udpxfer-scm-1.rockspec

clean:
	rm -rf build $(SO)
