# slipway build. Everything is found by wildcard, so a new module or test needs no edit here:
#   src/lib/*.c      the engine (libslipway.a)
#   src/cli/*.c      the CLI, one file per subcommand
#   tests/unit/test_*.c   cmocka unit tests, each linked against the library
#   tests/fuzz/fuzz_*.c   libFuzzer targets (clang)
#   tests/e2e/test_*.py   pytest end-to-end tests driving build/slipway

SHELL    := /bin/bash
CC       ?= gcc
BUILD    ?= build
PKGS     := libarchive libzstd libcrypto jansson libcurl sqlite3 libdeflate libseccomp
CPPFLAGS += -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -DSW_VERSION=\"$(shell cat VERSION 2>/dev/null || echo 0.1.0)\"
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu17 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 \
            -fno-strict-aliasing -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is not linked: src/lib/curl-lazy.c dlopens it on first use (it costs ~8 ms per process).
LDLIBS   += $(filter-out -lcurl,$(shell pkg-config --libs $(PKGS) 2>/dev/null)) -lisal -lpthread -ldl

LIB_SRCS  := $(sort $(wildcard src/lib/*.c))
CLI_SRCS  := $(sort $(wildcard src/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)

PYTEST   ?= /usr/bin/python3 -m pytest
# Seconds per fuzz target in `make test`: short by default (7 targets); CI's .ci/run sets 20,
# FUZZ_SECONDS=600 make fuzz-run is a real session.
FUZZ_SECONDS ?= 5

.PHONY: all deps test unit e2e asan fuzz fuzz-run format format-check lint check demo base-image \
        bench clean man man-md install uninstall deb

all: $(BUILD)/slipway

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libslipway.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/slipway: $(CLI_OBJS) $(BUILD)/libslipway.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libslipway.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libslipway.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -iquote src/lib -o $@ $< $(BUILD)/libslipway.a $(LDLIBS) -lcmocka

# Debian packages for building, testing and the demo; idempotent, `apt-get update` once.
deps:
	./scripts/deps.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: $(BUILD)/slipway
	SLIPWAY=$(abspath $(BUILD)/slipway) $(PYTEST) -q tests/e2e $(PYTEST_ARGS)

# The whole suite: style, lint, warnings-as-errors build, unit tests, the same unit tests under
# ASan+UBSan, bounded fuzzing, then end-to-end tests on the real binary.
test: deps
	$(MAKE) format-check lint all
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) fuzz-run
	$(MAKE) e2e

check: test

asan:
	$(MAKE) BUILD=build-asan CC=gcc \
	  CFLAGS="-O1 -g -MMD -MP -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" unit

# The library is compiled once for fuzzing (sanitizers + coverage), then each target links it.
FUZZ_CFLAGS := -std=gnu17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJS   := $(LIB_SRCS:%.c=build-fuzz/%.o)

build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

build-fuzz/libslipway.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

build-fuzz/%: tests/fuzz/%.c build-fuzz/libslipway.a
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -iquote src/lib -o $@ $< \
	  build-fuzz/libslipway.a $(LDLIBS)

fuzz: $(FUZZ_BINS)

# Each target runs for FUZZ_SECONDS (CI uses a short bound) from its seed corpus.
fuzz-run: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  mkdir -p tests/fuzz/corpus-$$n; \
	  seeds=tests/fuzz/seeds/$$n; [ -d $$seeds ] || seeds=; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    tests/fuzz/corpus-$$n $$seeds 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ; \
	  test $${PIPESTATUS[0]} -eq 0; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@out=$$(clang-format --dry-run $$(git ls-files '*.c' '*.h') 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; echo "format-check: run 'make format'"; exit 1; fi

# Banned idioms, checked mechanically (crun's sc_prohibit_*).
lint:
	@if git grep -nE '\b(sprintf|vsprintf|strcpy|strcat|gets|system)\s*\(' -- 'src/*.c' 'src/*.h'; then \
	  echo "lint: banned function (use snprintf/xasprintf/sw_buf_*/fork+exec)"; exit 1; fi

# Installation (PREFIX, DESTDIR as usual): the binary, a man page for slipway and for each
# command (roff made from docs/man/*.md by Debian's go-md2man), bash, zsh and fish completions.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
MAN_MD    := $(sort $(wildcard docs/man/*.1.md))
MAN_PAGES := $(MAN_MD:docs/man/%.md=$(BUILD)/man/%)
COMPLETIONS := bash-completion/completions/slipway:completions/slipway.bash \
               zsh/vendor-completions/_slipway:completions/_slipway \
               fish/vendor_completions.d/slipway.fish:completions/slipway.fish

$(BUILD)/man/%.1: docs/man/%.1.md
	@mkdir -p $(dir $@)
	go-md2man -in $< -out $@

man: $(MAN_PAGES)

# The markdown sources are written from the binary's --help texts: run after changing one.
man-md: $(BUILD)/slipway
	/usr/bin/python3 scripts/man-md.py $(BUILD)/slipway docs/man

install: all man
	install -D -m 755 $(BUILD)/slipway $(DESTDIR)$(BINDIR)/slipway
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	@set -e; for c in $(COMPLETIONS); do \
	  echo "install -D -m 644 $${c#*:} $(DESTDIR)$(DATADIR)/$${c%%:*}"; \
	  install -D -m 644 $${c#*:} $(DESTDIR)$(DATADIR)/$${c%%:*}; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/slipway $(MAN_PAGES:$(BUILD)/man/%=$(DESTDIR)$(MANDIR)/man1/%)
	@set -e; for c in $(COMPLETIONS); do rm -f $(DESTDIR)$(DATADIR)/$${c%%:*}; done

# A Debian package of the tree (debian/): ../slipway_VERSION_ARCH.deb
deb:
	dpkg-buildpackage -b -us -uc

base-image:
	./scripts/base-image.sh

demo: deps
	$(MAKE) all
	./scripts/demo.sh

bench: all
	./bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
