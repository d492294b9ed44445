# herenow — plain make. `make` builds the daemons and herenowctl;
# `make SANITIZER=address|undefined` builds an instrumented variant in its own
# directory; `make test`, `make run`, `make bench-udp` are described in README.md.

SANITIZER ?=
VARIANT   := $(if $(SANITIZER),$(SANITIZER),release)
OUT       := build/$(VARIANT)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wstrict-prototypes -Wshadow
ifeq ($(CI),true)
WARN    += -Werror
endif
ifneq ($(SANITIZER),)
CFLAGS  := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=$(SANITIZER) -fno-sanitize-recover=all
endif
# libpq's header lives in /usr/include/postgresql on Debian.
HN_PQ_CFLAGS := $(or $(shell pkg-config --cflags libpq 2>/dev/null),-I/usr/include/postgresql)
CPPFLAGS := -I. $(HN_PQ_CFLAGS) -D_GNU_SOURCE -MMD -MP
ALLCFLAGS = -std=c11 $(CFLAGS) $(WARN) $(SANFLAGS) -pthread
LDFLAGS  += $(SANFLAGS) -pthread

LIBS_COMMON := -lmsgpackc
LIBS_EVENT  := -levent_core -levent_extra -levent_pthreads
LIBS_REDIS  := -lhiredis
LIBS_PG     := -lpq
LIBS_CRYPTO := -lcrypto
# enrichment: UA parsing (libyaml + PCRE2), geo (libmaxminddb), the widget's gzip (zlib)
LIBS_ENRICH := -lyaml -lpcre2-8 -lmaxminddb -lz

PROTO_SRC     := $(wildcard proto/*.c)
COMMON_SRC    := $(wildcard common/*.c)
COLLECTOR_SRC := $(filter-out collector/main.c,$(wildcard collector/*.c))
CTL_SRC       := $(filter-out ctl/main.c,$(wildcard ctl/*.c))
API_SRC       := $(filter-out api/main.c,$(wildcard api/*.c))

obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))

PROTO_OBJ     := $(call obj,$(PROTO_SRC))
COMMON_OBJ    := $(call obj,$(COMMON_SRC))
COLLECTOR_OBJ := $(call obj,$(COLLECTOR_SRC))
CTL_OBJ       := $(call obj,$(CTL_SRC))
API_OBJ       := $(call obj,$(API_SRC))

BINS := $(OUT)/herenow-collector $(OUT)/herenow-api $(OUT)/herenowctl $(OUT)/hn-loadgen \
        $(OUT)/hn-sseclient $(OUT)/hn-ssefeed

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))

.PHONY: all clean test unit integration run stop bench-udp bench-drain bench-api bench-http bench-sse soak deps check-deps
all: $(BINS)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

$(OUT)/herenow-collector: $(call obj,collector/main.c) $(COLLECTOR_OBJ) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

$(OUT)/herenow-api: $(call obj,api/main.c) $(API_OBJ) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_PG) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

$(OUT)/herenowctl: $(call obj,ctl/main.c) $(CTL_OBJ) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_PG) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

$(OUT)/hn-loadgen: $(call obj,bench/loadgen.c) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

$(OUT)/hn-sseclient: $(call obj,bench/sseclient.c) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

$(OUT)/hn-ssefeed: $(call obj,bench/ssefeed.c) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

# Unit tests link every object but the mains (STYLE.md: main() only wires).
$(OUT)/tests/test_%: $(call obj,tests/unit/test_%.c) $(COLLECTOR_OBJ) $(PROTO_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_PG) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

# api/ objects a unit test needs besides the common ones
$(OUT)/tests/test_params: $(call obj,api/params.c)
$(OUT)/tests/test_static: $(call obj,api/static.c)
$(OUT)/tests/test_ticket: $(call obj,api/ticket.c)
$(OUT)/tests/test_api_server: $(API_OBJ)
$(OUT)/tests/test_live: $(API_OBJ)

# --- the README's commands ---------------------------------------------------

# Missing tools or headers: install the Debian packages first.
check-deps:
	@scripts/setup.sh --check >/dev/null 2>&1 || scripts/setup.sh

deps:
	scripts/setup.sh

unit: check-deps
	@$(MAKE) --no-print-directory $(UNIT_BINS) $(BINS)
	@tests/run-unit.sh $(UNIT_BINS)

integration: check-deps
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) tests/run-integration.sh

test: check-deps
	@$(MAKE) --no-print-directory $(UNIT_BINS) $(BINS) fuzz-replay-build fuzz-build
	@HN_BIN=$(OUT) tests/run-all.sh $(UNIT_BINS)

run: check-deps
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) scripts/run.sh

# bench-udp, bench-drain, bench-api, bench-http, bench-sse: bench/<name>.sh on fresh binaries.
# bench-http also needs nginx and perf (scripts/setup.sh --bench).
bench-udp bench-drain bench-api bench-http bench-sse: bench-%: check-deps
	@if [ $* = http ]; then scripts/setup.sh --check-bench >/dev/null 2>&1 || scripts/setup.sh --bench; fi
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) bench/$*.sh

# soak: scripts/soak.sh — SOAK_SECONDS (default 600) at a steady load with 10,000 live
# visitors; RSS of both daemons flat, no errors, all data in PostgreSQL (docs/SOAK.md).
soak: check-deps
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) scripts/soak.sh

# --- fuzzing (fuzz/, docs/OPERATIONS.md "Fuzzing") ----------------------------
# libFuzzer targets built with clang ($(OUT)/fuzz/fuzz_<t>); the same targets
# with a replay main built with $(CC) + ASan + UBSan ($(OUT)/fuzz-replay/replay_<t>),
# so that the corpus runs without clang. `make fuzz FUZZ_TIME=600` fuzzes each
# target for that many seconds (FUZZ_TARGETS=ingress: one of them); `make test`
# replays the corpus and fuzzes each target for 30 s (tests/integration/test_fuzz.sh).
# fuzz_ingress runs the collector's whole HTTP ingress, so it links every
# collector object and the embedded widget script besides FUZZ_LIB_SRC.
FUZZ_TARGETS := beacon query record http ingress
FUZZ_LIB_SRC := $(PROTO_SRC) $(COMMON_SRC) collector/httpmap.c
FUZZ_LIBS    := $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_TIME    ?= 60
FZ := $(OUT)/fuzz
FR := $(OUT)/fuzz-replay

$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) -pthread -c $< -o $@

$(FZ)/obj/gen/widget_js.o: $(OUT)/gen/widget_js.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -O1 -g $(FUZZ_SAN) -c $< -o $@

$(FZ)/fuzz_%: $(FZ)/obj/fuzz/fuzz_%.o $(patsubst %.c,$(FZ)/obj/%.o,$(FUZZ_LIB_SRC))
	clang -fsanitize=fuzzer $(FUZZ_SAN) -pthread -o $@ $^ $(FUZZ_LIBS)

$(FZ)/fuzz_ingress: $(patsubst %.c,$(FZ)/obj/%.o,$(COLLECTOR_SRC)) $(FZ)/obj/gen/widget_js.o

$(FR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) $(FUZZ_SAN) -pthread -c $< -o $@

$(FR)/obj/gen/widget_js.o: $(OUT)/gen/widget_js.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O1 -g $(FUZZ_SAN) -c $< -o $@

$(FR)/replay_%: $(FR)/obj/fuzz/fuzz_%.o $(FR)/obj/fuzz/replay.o $(patsubst %.c,$(FR)/obj/%.o,$(FUZZ_LIB_SRC))
	$(CC) $(FUZZ_SAN) -pthread -o $@ $^ $(FUZZ_LIBS)

$(FR)/replay_ingress: $(patsubst %.c,$(FR)/obj/%.o,$(COLLECTOR_SRC)) $(FR)/obj/gen/widget_js.o

# mkseeds builds the widget script too: the ingress seeds carry its ETags
$(FR)/mkseeds: $(FR)/obj/fuzz/mkseeds.o $(patsubst %.c,$(FR)/obj/%.o,$(FUZZ_LIB_SRC) collector/script.c) \
               $(FR)/obj/gen/widget_js.o
	$(CC) $(FUZZ_SAN) -pthread -o $@ $^ $(FUZZ_LIBS)

# the objects are made by pattern rules only: keep them between builds
FUZZ_OBJ_SRC := $(FUZZ_LIB_SRC) $(COLLECTOR_SRC) fuzz/replay.c fuzz/mkseeds.c $(FUZZ_TARGETS:%=fuzz/fuzz_%.c)
.SECONDARY: $(patsubst %.c,$(FZ)/obj/%.o,$(FUZZ_OBJ_SRC)) $(patsubst %.c,$(FR)/obj/%.o,$(FUZZ_OBJ_SRC))

.PHONY: fuzz fuzz-build fuzz-replay-build fuzz-seeds
fuzz-build: $(FUZZ_TARGETS:%=$(FZ)/fuzz_%)
fuzz-replay-build: $(FUZZ_TARGETS:%=$(FR)/replay_%)
# rewrites the seeds in fuzz/corpus/ (committed); inputs the fuzzer found are added by hand
fuzz-seeds: $(FR)/mkseeds
	$(FR)/mkseeds fuzz/corpus
fuzz: check-deps fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_BIN=$(FZ) scripts/fuzz.sh $(FUZZ_TARGETS)

# every unit test under valgrind: no memory error, no leak (tests/valgrind.sh)
.PHONY: valgrind
valgrind: check-deps
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@tests/valgrind.sh $(UNIT_BINS)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# --- herenowctl extras (migrations embedding, test tools) ---
# The sql/NNN_name.sql migrations are compiled into herenowctl
# (scripts/embed-sql.sh → $(OUT)/gen/migrations.c), so `herenowctl migrate`
# needs no sql/ directory at run time. migrations.list holds the file names
# and changes only when a file is added, renamed or removed, which a
# dependency on the files alone would miss.
HN_MIGRATIONS := $(sort $(wildcard sql/*.sql))

.PHONY: hn-force
$(OUT)/gen/migrations.list: hn-force
	@mkdir -p $(dir $@)
	@echo '$(HN_MIGRATIONS)' | cmp -s - $@ 2>/dev/null || echo '$(HN_MIGRATIONS)' > $@

$(OUT)/gen/migrations.c: scripts/embed-sql.sh $(HN_MIGRATIONS) $(OUT)/gen/migrations.list
	bash scripts/embed-sql.sh $@ $(HN_MIGRATIONS)

$(OUT)/obj/gen/migrations.o: $(OUT)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

$(OUT)/herenowctl: $(OUT)/obj/gen/migrations.o


# hn-freeport: a port free for TCP and UDP on 127.0.0.1 (tests/lib.sh).
# `all` was expanded above, so it gets the new binary by name; the recipes
# that use $(BINS) (unit, integration, test, run) expand it late and see it.
$(OUT)/hn-freeport: $(call obj,tests/tools/freeport.c)
	$(CC) $(LDFLAGS) -o $@ $^

BINS += $(OUT)/hn-freeport
all: $(OUT)/hn-freeport

# hn-udpsend: stdin as exactly one UDP datagram (integration tests).
$(OUT)/hn-udpsend: $(call obj,tests/tools/udpsend.c)
	$(CC) $(LDFLAGS) -o $@ $^

BINS += $(OUT)/hn-udpsend
all: $(OUT)/hn-udpsend

# hn-steady: a steady stream of unique beacons over UDP and HTTP, counting
# answers (tests/integration/test_outage.sh, scripts/soak.sh).
$(OUT)/hn-steady: $(call obj,tests/tools/steady.c) $(PROTO_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_REDIS) $(LIBS_COMMON) $(LIBS_ENRICH) $(LIBS_CRYPTO) -lm

BINS += $(OUT)/hn-steady
all: $(OUT)/hn-steady

# --- the widget script, embedded in the collector ---
# widget/herenow.min.js is made from widget/herenow.js by widget/build.sh
# (terser, from tests/browser's npm tooling) and checked in, so building the
# collector needs no npm; test_browser.sh checks that it is up to date.
$(OUT)/gen/widget_js.c: scripts/embed-file.sh widget/herenow.min.js
	bash scripts/embed-file.sh $@ hn_widget_js widget/herenow.min.js

$(OUT)/obj/gen/widget_js.o: $(OUT)/gen/widget_js.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

$(OUT)/herenow-collector: $(OUT)/obj/gen/widget_js.o
$(UNIT_BINS): $(OUT)/obj/gen/widget_js.o
