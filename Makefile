# libvirt-synth: the targets a newcomer needs. `make help` lists them.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
CC ?= gcc
CFLAGS ?= -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE
NATIVE_BUILD := native/build
GUEST_SRCS := $(wildcard native/src/guest/*.c) native/src/common/layout.c
GUEST_OBJS := $(patsubst %.c,$(NATIVE_BUILD)/%.o,$(notdir $(GUEST_SRCS)))

.PHONY: help setup demo test test-fast bench lint format libsynth afalg-kat synth-guest guest-image clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "  libvirt_synth/   Python: the base (abi, errors, log, defaults, capabilities, cmdline),"
	@echo "                   guest/ host/ hook/ vnfd/ xml/ daemon/ inventory/ testbed/ move/ placement/ cli/"
	@echo "  native/src/      C: common/ (layout), guest/ (libsynth.a), host/ (data path), plugins/"
	@echo "  guest/           synth-guest, the test VM's program;  tests/ bench/ docs/ ansible/"
	@echo "  README.md, 'What is here', says what each part is and what it may import."

setup: ## install system packages (as root) and the virtualenv, build the C core
	@scripts/bootstrap

demo: setup ## run the demo: a crypto device served by a backend in a temporary directory
	$(VENV)/bin/virt-synth demo

test: setup libsynth ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup ## tests without the slow ones
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

BENCHES := $(filter-out %.c %.h %.py out,$(notdir $(wildcard bench/*)))

bench: setup libsynth ## run every benchmark in bench/ (each prints our figure next to its baseline)
	@set -e; for b in $(BENCHES); do echo "== bench/$$b"; $(PY) bench/$$b; done

lint: setup ## ruff, mypy, ansible-lint, and the C core's names and file dependencies
	$(VENV)/bin/ruff check libvirt_synth tests bench $(addprefix bench/,$(BENCHES))
	$(VENV)/bin/mypy libvirt_synth
	cd ansible && $(VENV)/bin/ansible-lint
	scripts/check-c-structure

format: setup ## apply ruff's fixes
	$(VENV)/bin/ruff check --fix libvirt_synth tests bench $(addprefix bench/,$(BENCHES))

libsynth: $(NATIVE_BUILD)/libsynth.a ## the static guest library (native/build/libsynth.a)

$(NATIVE_BUILD)/%.o: native/src/*/%.c native/include/synth/*.h
	@mkdir -p $(NATIVE_BUILD)
	$(CC) $(CFLAGS) -Inative/include -c $(filter %/$*.c,$(GUEST_SRCS)) -o $@

# Every guest source: crypto, compression and packet APIs all go into the one static library.
$(NATIVE_BUILD)/libsynth.a: $(GUEST_OBJS)
	rm -f $@
	ar rcs $@ $^

afalg-kat: $(NATIVE_BUILD)/afalg-kat ## the AF_ALG plugin's known-answer test program (static)

$(NATIVE_BUILD)/afalg-kat: native/tests/afalg_kat.c native/tests/kat_vectors.h native/src/plugins/crypto_afalg.c native/include/synth/*.h
	@mkdir -p $(NATIVE_BUILD)
	$(CC) $(CFLAGS) -static -Inative/include native/tests/afalg_kat.c native/src/plugins/crypto_afalg.c -o $@

SYNTH_GUEST_SRCS := $(wildcard guest/*.c)

synth-guest: $(NATIVE_BUILD)/synth-guest ## the guest's test program, static (probe, selftest, bench)

$(NATIVE_BUILD)/synth-guest: $(SYNTH_GUEST_SRCS) guest/sg.h native/tests/kat_vectors.h $(NATIVE_BUILD)/libsynth.a
	$(CC) $(CFLAGS) -static -Inative/include -Inative/tests $(SYNTH_GUEST_SRCS) $(NATIVE_BUILD)/libsynth.a -o $@

guest-image: setup synth-guest afalg-kat ## the guest kernel + initramfs (cached in ~/.cache/libvirt-synth)
	$(VENV)/bin/virt-synth guest-image

clean: ## remove build products (keeps .venv)
	rm -rf $(NATIVE_BUILD) build *.egg-info libvirt_synth/_native*.so

# Sanitizers and fuzzers (issue 13): sanitized builds go to native/build/{asan,tsan,fuzz}/, never
# over the installed extension.
.PHONY: sanitize tsan fuzz
FUZZ_SECONDS ?= 60
FUZZ_SEED ?= 1

sanitize: setup ## hostile-input tests against the C core built with ASan + UBSan
	scripts/sanitize asan

tsan: setup ## multi-threaded tests against the C core built with ThreadSanitizer
	scripts/sanitize tsan

fuzz: setup ## libFuzzer harnesses of each class, FUZZ_SECONDS (60) each, from native/fuzz/corpus
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) scripts/fuzz
