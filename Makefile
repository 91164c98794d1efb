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

.PHONY: help setup demo test test-fast bench lint format libsynth afalg-kat synth-guest guest-image clean \
	provider provider-kat guest-inputs inline-gcm-test

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

# The DPDK PMDs only where DPDK is installed: without it the guest image simply has no `dpdk` step
# and the DPDK tests say why they skip.
HAVE_DPDK := $(shell pkg-config --exists libdpdk 2>/dev/null && echo dpdk)

test: setup libsynth provider provider-kat $(HAVE_DPDK) ## run the whole test suite
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

# The guest library as an SDK for VNF developers, C or C++ (docs/guest.md, "Building against
# libsynth"): the headers a guest program includes, libsynth.a, libsynth.so and libsynth.pc.
.PHONY: libsynth-so install uninstall
PREFIX ?= /usr/local
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
# The library's own version: the major (the soname) changes when programs built against an older
# libsynth would break, the minor when functions are added.
LIBSYNTH_VERSION := 1.3.0
LIBSYNTH_SONAME := libsynth.so.$(firstword $(subst ., ,$(LIBSYNTH_VERSION)))
LIBSYNTH_SO := $(NATIVE_BUILD)/libsynth.so.$(LIBSYNTH_VERSION)
SDK_HEADERS := $(addprefix native/include/synth/,guest.h guest_compress.h guest_packet.h \
	device_core.h crypto_core.h compress_core.h packet_core.h)
PIC_OBJS := $(addprefix $(NATIVE_BUILD)/pic/,$(notdir $(GUEST_OBJS)))

libsynth-so: $(LIBSYNTH_SO) ## the shared guest library (native/build/libsynth.so, soname libsynth.so.1)

$(NATIVE_BUILD)/pic/%.o: native/src/*/%.c native/include/synth/*.h
	@mkdir -p $(NATIVE_BUILD)/pic
	$(CC) $(CFLAGS) -fPIC -Inative/include -c $(filter %/$*.c,$(GUEST_SRCS)) -o $@

# Only the API (synth_*) is exported; the library's internal symbols (synthi_*) stay inside it.
$(NATIVE_BUILD)/libsynth.map: Makefile
	@mkdir -p $(NATIVE_BUILD)
	printf '{\n  global: synth_*;\n  local: *;\n};\n' > $@

$(LIBSYNTH_SO): $(PIC_OBJS) $(NATIVE_BUILD)/libsynth.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIBSYNTH_SONAME) -Wl,-z,defs \
		-Wl,--version-script=$(NATIVE_BUILD)/libsynth.map $(PIC_OBJS) -o $@
	ln -sf $(notdir $@) $(NATIVE_BUILD)/$(LIBSYNTH_SONAME)
	ln -sf $(LIBSYNTH_SONAME) $(NATIVE_BUILD)/libsynth.so

# libdir and includedir are written relative to ${prefix} when they are under it, so that
# pkg-config --define-variable=prefix=... (or PKG_CONFIG_SYSROOT_DIR) can move them.
PC_SUBST := -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIBSYNTH_VERSION)|' \
	-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|'

install: libsynth libsynth-so provider ## headers, libsynth.a/.so, libsynth.pc into DESTDIR + PREFIX (/usr/local); the provider into OpenSSL's modules
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)/synth $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(SDK_HEADERS) $(DESTDIR)$(INCLUDEDIR)/synth/
	$(INSTALL) -m 644 $(NATIVE_BUILD)/libsynth.a $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(LIBSYNTH_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(LIBSYNTH_SO)) $(DESTDIR)$(LIBDIR)/$(LIBSYNTH_SONAME)
	ln -sf $(LIBSYNTH_SONAME) $(DESTDIR)$(LIBDIR)/libsynth.so
	sed $(PC_SUBST) native/libsynth.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libsynth.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/libsynth.pc
	$(INSTALL) -d $(DESTDIR)$(OSSL_MODULESDIR)
	$(INSTALL) -m 644 $(PROVIDER) $(DESTDIR)$(OSSL_MODULESDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall: ## remove what make install put there (same DESTDIR and PREFIX)
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/synth/,$(notdir $(SDK_HEADERS)))
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,libsynth.a libsynth.so $(LIBSYNTH_SONAME) $(notdir $(LIBSYNTH_SO)))
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/libsynth.pc
	rm -f $(DESTDIR)$(OSSL_MODULESDIR)/synth.so
	rmdir $(DESTDIR)$(INCLUDEDIR)/synth 2>/dev/null || true

# The inline plugin's code (issue 21: what a guest will run in process, from a signed image the host
# hands it): freestanding objects, one per CPU level, that import nothing and relocate nothing.
INLINE_CFLAGS := -O2 -g -Wall -Wextra -Werror -std=gnu11 -ffreestanding -fno-builtin \
	-fno-tree-loop-distribute-patterns -fno-stack-protector -fPIC -fno-asynchronous-unwind-tables \
	-fcf-protection=none
INLINE_AESNI := -maes -mpclmul -msse4.1

$(NATIVE_BUILD)/inline/gcm-aesni.o: native/inline/gcm_aesni.c native/inline/inline_gcm.h
	@mkdir -p $(dir $@)
	$(CC) $(INLINE_CFLAGS) $(INLINE_AESNI) -c $< -o $@

inline-gcm-test: $(NATIVE_BUILD)/inline-gcm-test ## the inline plugin's AES-GCM driven from stdin (tests/test_inline_gcm.py)

$(NATIVE_BUILD)/inline-gcm-test: native/tests/inline_gcm_test.c $(NATIVE_BUILD)/inline/gcm-aesni.o
	$(CC) $(CFLAGS) -Inative/inline $^ -o $@

afalg-kat: $(NATIVE_BUILD)/afalg-kat ## the AF_ALG plugin's known-answer test program (static)

$(NATIVE_BUILD)/afalg-kat: native/tests/afalg_kat.c native/tests/kat_vectors.h native/tests/kat_hex.h native/src/plugins/crypto_afalg.c native/include/synth/*.h
	@mkdir -p $(NATIVE_BUILD)
	$(CC) $(CFLAGS) -static -Inative/include native/tests/afalg_kat.c native/src/plugins/crypto_afalg.c -o $@

# The OpenSSL 3 provider `synth` (docs/openssl.md): a module that OpenSSL loads, with the guest
# library inside it. Only OSSL_provider_init is exported.
PROVIDER_SRCS := $(wildcard native/provider/*.c)
PROVIDER := $(NATIVE_BUILD)/ossl-modules/synth.so
OSSL_MODULESDIR ?= $(shell pkg-config --variable=modulesdir libcrypto 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/ossl-modules)

provider: $(PROVIDER) ## the OpenSSL 3 provider module (native/build/ossl-modules/synth.so)

$(NATIVE_BUILD)/provider.map: Makefile
	@mkdir -p $(NATIVE_BUILD)
	printf '{\n  global: OSSL_provider_init;\n  local: *;\n};\n' > $@

$(PROVIDER): $(PROVIDER_SRCS) $(wildcard native/provider/*.h) $(PIC_OBJS) $(NATIVE_BUILD)/provider.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -Inative/include -Wl,-z,defs -Wl,--version-script=$(NATIVE_BUILD)/provider.map \
		$(PROVIDER_SRCS) $(PIC_OBJS) -lcrypto -lpthread -o $@

provider-kat: $(NATIVE_BUILD)/provider-kat ## the provider's known-answer and differential test program

PROVIDER_KAT_SRCS := $(wildcard native/tests/provider_kat*.c)

$(NATIVE_BUILD)/provider-kat: $(PROVIDER_KAT_SRCS) $(wildcard native/tests/provider_kat*.h) native/tests/provider_vectors.h native/tests/kat_hex.h
	@mkdir -p $(NATIVE_BUILD)
	$(CC) $(CFLAGS) -Inative/include -Inative/tests $(PROVIDER_KAT_SRCS) -lcrypto -o $@

# DPDK poll-mode drivers (docs/dpdk.md): the driver SDK headers come from Debian's source package
# of the installed DPDK (scripts/dpdk-sdk), the PMDs are built by native/dpdk/Makefile.
.PHONY: dpdk-sdk dpdk
dpdk-sdk: ## fetch DPDK's driver SDK headers for the installed version (native/build/dpdk-sdk)
	scripts/dpdk-sdk

dpdk: dpdk-sdk $(PIC_OBJS) ## the DPDK PMDs (native/build/dpdk/)
	$(MAKE) -C native/dpdk

SYNTH_GUEST_SRCS := $(wildcard guest/*.c)

synth-guest: $(NATIVE_BUILD)/synth-guest ## the guest's test program, static (probe, selftest, bench)

$(NATIVE_BUILD)/synth-guest: $(SYNTH_GUEST_SRCS) guest/sg.h native/tests/kat_vectors.h $(NATIVE_BUILD)/libsynth.a
	$(CC) $(CFLAGS) -static -Inative/include -Inative/tests $(SYNTH_GUEST_SRCS) $(NATIVE_BUILD)/libsynth.a -o $@

guest-inputs: synth-guest afalg-kat provider provider-kat $(HAVE_DPDK) ## the programs the guest image carries (synth-guest, afalg-kat, the provider and its test, the DPDK PMD where DPDK is installed)

guest-image: setup guest-inputs ## the guest kernel + initramfs (cached in ~/.cache/libvirt-synth)
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
