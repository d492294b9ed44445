# herenow — plain make. `make` builds the daemons, herenowctl and the test
# and bench tools into build/<variant>/; `make test`, `make run` and the
# benches are described in README.md. The order of this file: variables,
# sources per room, binaries, generated sources, the README's commands,
# tests (unit, valgrind, fuzz), benches, clean.

# ---- variables ------------------------------------------------------------------

.DEFAULT_GOAL := all

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
# The release: debian/changelog's first line (`herenow (0.2.0) …`), in --version and the package.
HN_VERSION := $(shell awk -F'[()]' 'NR == 1 { print $$2 }' debian/changelog 2>/dev/null)
# CPPFLAGS from the environment (dpkg-buildflags' -D_FORTIFY_SOURCE=2 in `make deb`) come after ours
CPPFLAGS := -I. $(HN_PQ_CFLAGS) -D_GNU_SOURCE -DHN_VERSION='"$(or $(HN_VERSION),unknown)"' -MMD -MP $(CPPFLAGS)
ALLCFLAGS = -std=c11 $(CFLAGS) $(WARN) $(SANFLAGS) -pthread
# --as-needed: a binary records only the libraries it really calls (ldd)
LDFLAGS  += $(SANFLAGS) -pthread -Wl,--as-needed

# One library list per binary (the archives below pull only the objects a
# binary uses). Enrichment (libyaml for uap-core, libmaxminddb) is the
# collector's alone; PCRE2 also runs rules' regex conditions (proto/rule.c:
# the api and herenowctl).
LIBS_EVENT     := -levent_core -levent_extra -levent_pthreads
LIBS_COLLECTOR := $(LIBS_EVENT) -levent_openssl -lssl -lhiredis -lmsgpackc -lpcre2-8 -lyaml -lmaxminddb -lcrypto -lz -lm
LIBS_API       := $(LIBS_EVENT) -levent_openssl -lpq -lhiredis -lmsgpackc -lpcre2-8 -lssl -lcrypto -lz -lm
LIBS_CTL       := $(LIBS_EVENT) -levent_openssl -lssl -lpq -lhiredis -lmsgpackc -lpcre2-8 -lcrypto -lz -lm
LIBS_TOOLS     := $(LIBS_EVENT) -lhiredis -lmsgpackc -lpcre2-8 -lcrypto -lz -lm
LIBS_UNIT      := -lcmocka $(LIBS_EVENT) -levent_openssl -lssl -lpq -lhiredis -lmsgpackc -lpcre2-8 -lyaml -lmaxminddb \
                  -lcrypto -lz -lm

# ---- sources per room (docs/ARCHITECTURE.md) --------------------------------------

obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))

PROTO_SRC     := $(wildcard proto/*.c)
COMMON_SRC    := $(wildcard common/*.c)
COLLECTOR_SRC := $(filter-out collector/main.c,$(wildcard collector/*.c))
API_SRC       := $(filter-out api/main.c,$(wildcard api/*.c api/live/*.c api/drain/*.c api/rules/*.c))
CTL_SRC       := $(filter-out ctl/main.c,$(wildcard ctl/*.c))
BENCH_SRC     := $(wildcard bench/lib/*.c)

# The rooms' objects go into four archives (proto/ and common/ share one; the
# api's four rooms share one): a binary links the objects it calls, no more.
LIB_BASE      := $(OUT)/lib/libhn-base.a
LIB_COLLECTOR := $(OUT)/lib/libhn-collector.a
LIB_API       := $(OUT)/lib/libhn-api.a
LIB_CTL       := $(OUT)/lib/libhn-ctl.a
LIB_BENCH     := $(OUT)/lib/libhn-bench.a

# archive LIB, OBJECTS: LIB is made anew when an object changes or the list
# of objects does (a source moved to another room or removed must not stay
# behind in the old archive); LIB.members holds the list.
define archive
$(1): $(2) $(1).members
$(1).members: hn-force
	@mkdir -p $$(dir $$@)
	@echo '$(2)' | cmp -s - $$@ 2>/dev/null || echo '$(2)' > $$@
endef
$(eval $(call archive,$(LIB_BASE),$(call obj,$(PROTO_SRC) $(COMMON_SRC))))
$(eval $(call archive,$(LIB_COLLECTOR),$(call obj,$(COLLECTOR_SRC)) $(OUT)/obj/gen/widget_js.o $(OUT)/obj/gen/chat_js.o))
$(eval $(call archive,$(LIB_API),$(call obj,$(API_SRC))))
$(eval $(call archive,$(LIB_CTL),$(call obj,$(CTL_SRC)) $(OUT)/obj/gen/migrations.o))
$(eval $(call archive,$(LIB_BENCH),$(call obj,$(BENCH_SRC))))

$(OUT)/lib/%.a:
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

# ---- binaries -------------------------------------------------------------------------

TOOLS := hn-loadgen hn-sseclient hn-ssefeed hn-chatclient hn-chatdrive hn-chatdash hn-rulebench hn-steady hn-freeport hn-udpsend hn-rcltest \
         hn-drainsql
BINS  := $(OUT)/herenow-collector $(OUT)/herenow-api $(OUT)/herenowctl $(TOOLS:%=$(OUT)/%)

.PHONY: all
all: $(BINS)

# --version prints debian/changelog's release
$(call obj,collector/main.c api/main.c ctl/main.c): debian/changelog

$(OUT)/herenow-collector: $(call obj,collector/main.c) $(LIB_COLLECTOR) $(LIB_BASE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_COLLECTOR)

$(OUT)/herenow-api: $(call obj,api/main.c) $(LIB_API) $(LIB_BASE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_API)

$(OUT)/herenowctl: $(call obj,ctl/main.c) $(LIB_CTL) $(LIB_BASE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CTL)

# bench and test tools: hn-loadgen (load generator), hn-sseclient and
# hn-ssefeed (the live stream's bench), hn-chatclient, hn-chatdrive and
# hn-chatdash (the chat's bench; bench/lib/: what the benches share), hn-rulebench (the
# rules' evaluation alone: bench-rules' same-run reference), hn-drainsql (the drain's statements
# as text: bench-upsert), hn-steady (a steady stream of unique
# beacons over UDP and HTTP: test_outage, soak), hn-freeport (a port free for
# TCP and UDP: tests/lib.sh), hn-udpsend (stdin as one datagram), hn-rcltest (common/rcl.c on a
# real Redis Cluster: test_rcl)
TOOL_MAIN := hn-loadgen:bench/loadgen.c hn-sseclient:bench/sseclient.c hn-ssefeed:bench/ssefeed.c \
             hn-chatclient:bench/chatclient.c hn-chatdrive:bench/chatdrive.c hn-chatdash:bench/chatdash.c \
             hn-rulebench:bench/rulebench.c hn-drainsql:bench/drainsql.c \
             hn-steady:tests/tools/steady.c hn-freeport:tests/tools/freeport.c \
             hn-udpsend:tests/tools/udpsend.c hn-rcltest:tests/tools/rcltest.c
tool_src = $(patsubst $(1):%,%,$(filter $(1):%,$(TOOL_MAIN)))
$(foreach t,$(TOOLS),$(eval $(OUT)/$(t): $(call obj,$(call tool_src,$(t))) $(LIB_BENCH) $(LIB_BASE)))
# hn-drainsql prints api/drain/sql.c's strings (no code: nothing else of the api is linked)
$(OUT)/hn-drainsql: $(call obj,api/drain/sql.c)
$(TOOLS:%=$(OUT)/%):
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_TOOLS)

# ---- generated sources -------------------------------------------------------------

# The widget script, embedded in the collector. widget/herenow.min.js is made
# from widget/herenow.js by widget/build.sh (terser, from tests/browser's npm
# tooling) and checked in, so building the collector needs no npm;
# test_browser.sh checks that it is up to date.
$(OUT)/gen/widget_js.c: scripts/embed-file.sh widget/herenow.min.js
	bash scripts/embed-file.sh $@ hn_widget_js widget/herenow.min.js

# The chat script (docs/CHAT.md), the same way: widget/herenow-chat.min.js,
# checked in, served at HERENOW_CHAT_SCRIPT_PATH.
$(OUT)/gen/chat_js.c: scripts/embed-file.sh widget/herenow-chat.min.js
	bash scripts/embed-file.sh $@ hn_chat_js widget/herenow-chat.min.js

# The sql/NNN_name.sql migrations, compiled into herenowctl
# (scripts/embed-sql.sh), so `herenowctl migrate` needs no sql/ directory at
# run time. migrations.list holds the file names and changes only when a file
# is added, renamed or removed, which a dependency on the files alone would miss.
HN_MIGRATIONS := $(sort $(wildcard sql/*.sql))

.PHONY: hn-force
$(OUT)/gen/migrations.list: hn-force
	@mkdir -p $(dir $@)
	@echo '$(HN_MIGRATIONS)' | cmp -s - $@ 2>/dev/null || echo '$(HN_MIGRATIONS)' > $@

$(OUT)/gen/migrations.c: scripts/embed-sql.sh $(HN_MIGRATIONS) $(OUT)/gen/migrations.list
	bash scripts/embed-sql.sh $@ $(HN_MIGRATIONS)

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

# ---- the README's commands ------------------------------------------------------------

.PHONY: check-deps deps unit integration test run
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

# the build before the tests: as many compilers at once as there are cores,
# unless the caller gave its own -j
TEST_JOBS := $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc))
test: check-deps
	@$(MAKE) --no-print-directory $(TEST_JOBS) $(UNIT_BINS) $(BINS) fuzz-replay-build fuzz-build
	@HN_BIN=$(OUT) tests/run-all.sh $(UNIT_BINS)

run: check-deps
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) HN_RUN_CLUSTER=$(CLUSTER) scripts/run.sh

# deb: the Debian package (debian/: debhelper), built by dpkg-buildpackage on a copy of the
# tree's files (committed or not, ignored ones left out) in build/deb/src; the .deb lands in
# build/deb/. docs/OPERATIONS.md "The Debian package".
.PHONY: deb
deb: check-deps
	@rm -rf build/deb && mkdir -p build/deb/src
	@# (files deleted but not committed yet are left out)
	@git ls-files -z --cached --others --exclude-standard --deduplicate | \
	    perl -0 -ne 'chomp; print "$$_\0" if -e' | xargs -0 cp --parents -t build/deb/src
	@# (this make's variables, SANITIZER= or CI=true, stay out of the package's build)
	@cd build/deb/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -b -us -uc --jobs-try=auto >../build.log 2>&1 || \
	    { tail -30 ../build.log; exit 1; }
	@ls build/deb/*.deb

# ---- unit tests ---------------------------------------------------------------------------
# Each links its test file and the room archives: the objects it calls, never a main
# (STYLE.md: main() only wires).

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))

$(OUT)/tests/test_%: $(call obj,tests/unit/test_%.c) $(LIB_API) $(LIB_COLLECTOR) $(LIB_BASE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_UNIT)

# every unit test under valgrind: no memory error, no leak (tests/valgrind.sh)
.PHONY: valgrind
valgrind: check-deps
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@tests/valgrind.sh $(UNIT_BINS)

# ---- fuzzing (fuzz/, docs/OPERATIONS.md "Fuzzing") -------------------------------------
# libFuzzer targets built with clang ($(OUT)/fuzz/fuzz_<t>); the same targets
# with a replay main built with $(CC) + ASan + UBSan ($(OUT)/fuzz-replay/replay_<t>),
# so that the corpus runs without clang. `make fuzz FUZZ_TIME=600` fuzzes each
# target for that many seconds (FUZZ_TARGETS=ingress: one of them); `make test`
# replays the corpus and fuzzes each target for 15 s, one per core (tests/integration/test_fuzz.sh).
# fuzz_ingress runs the collector's whole HTTP ingress, so it links every
# collector object and the embedded widget script besides FUZZ_LIB_SRC.
FUZZ_TARGETS := beacon query record http ingress
# (common/pg.c: no fuzz target talks to PostgreSQL, and they do not link libpq)
FUZZ_LIB_SRC := $(PROTO_SRC) $(filter-out common/pg.c,$(COMMON_SRC)) collector/httpmap.c collector/uap.c
FUZZ_LIBS    := $(LIBS_COLLECTOR)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_TIME    ?= 60
FZ := $(OUT)/fuzz
FR := $(OUT)/fuzz-replay

$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) -pthread -c $< -o $@

$(FZ)/obj/gen/%_js.o: $(OUT)/gen/%_js.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -O1 -g $(FUZZ_SAN) -c $< -o $@

$(FZ)/fuzz_%: $(FZ)/obj/fuzz/fuzz_%.o $(patsubst %.c,$(FZ)/obj/%.o,$(FUZZ_LIB_SRC))
	clang -fsanitize=fuzzer $(FUZZ_SAN) -pthread -o $@ $^ $(FUZZ_LIBS)

$(FZ)/fuzz_ingress: $(patsubst %.c,$(FZ)/obj/%.o,$(COLLECTOR_SRC)) $(FZ)/obj/gen/widget_js.o $(FZ)/obj/gen/chat_js.o

$(FR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) $(FUZZ_SAN) -pthread -c $< -o $@

$(FR)/obj/gen/%_js.o: $(OUT)/gen/%_js.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O1 -g $(FUZZ_SAN) -c $< -o $@

$(FR)/replay_%: $(FR)/obj/fuzz/fuzz_%.o $(FR)/obj/fuzz/replay.o $(patsubst %.c,$(FR)/obj/%.o,$(FUZZ_LIB_SRC))
	$(CC) $(FUZZ_SAN) -pthread -o $@ $^ $(FUZZ_LIBS)

$(FR)/replay_ingress: $(patsubst %.c,$(FR)/obj/%.o,$(COLLECTOR_SRC)) $(FR)/obj/gen/widget_js.o $(FR)/obj/gen/chat_js.o

# mkseeds builds the widget script too: the ingress seeds carry its ETags
$(FR)/mkseeds: $(FR)/obj/fuzz/mkseeds.o $(patsubst %.c,$(FR)/obj/%.o,$(FUZZ_LIB_SRC) collector/script.c) \
               $(FR)/obj/gen/widget_js.o $(FR)/obj/gen/chat_js.o
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

# ---- benches and the soak ------------------------------------------------------------------

# bench-udp, bench-drain, bench-api, bench-http, bench-sse, bench-chat, bench-rules, bench-cluster:
# bench/<name>.sh on fresh binaries. bench-http also needs nginx and perf (scripts/setup.sh --bench).
# bench-cluster: bench-udp's mix on a standalone Redis and on a 3+3 Redis Cluster (issue 17).
# bench-upsert: the drain's session upsert alone, at fillfactor 100 and at the schema's 70 (sql/002).
.PHONY: bench-udp bench-drain bench-upsert bench-api bench-http bench-sse bench-chat bench-rules bench-cluster soak
bench-udp bench-drain bench-upsert bench-api bench-http bench-sse bench-chat bench-rules bench-cluster: bench-%: check-deps
	@if [ $* = http ]; then scripts/setup.sh --check-bench >/dev/null 2>&1 || scripts/setup.sh --bench; fi
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) bench/$*.sh

# soak: scripts/soak.sh — SOAK_SECONDS (default 600) at a steady load with 10,000 live
# visitors; RSS of both daemons flat, no errors, all data in PostgreSQL (docs/SOAK.md).
soak: check-deps
	@$(MAKE) --no-print-directory $(BINS)
	@HN_BIN=$(OUT) scripts/soak.sh

# ---- clean ------------------------------------------------------------------------------------

.PHONY: clean
clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
