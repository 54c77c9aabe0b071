# Everyday commands. CMake does the building; this only names the steps.
#   make run          install what is missing, build, start the broker on its defaults
#   make test         install what is missing, build, run every test
#   make test-asan    the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan    the same suite under ThreadSanitizer
#   make stress       the long attack variants (label `stress`; CI runs them too)
#   make bench        build and run the benchmarks (never part of `make test`)
#   make fuzz         build the libFuzzer harnesses with clang (build-fuzz/) and run
#                     each for FUZZ_SECONDS (default 30) from its seeds (fuzz/README.md)
#   make lint         clang-tidy over the project's sources
#   make format-check fail on code in src/, include/, apps/ that clang-format would change
#   make package      the Debian packages, built in build-package/ (docs/packaging.md)
#   make package-test build them and check them unpacked (label `package`)
#   make container-test  build the container image with podman and run the
#                     broker from it (label `container`; root, some minutes)

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
BUILD_TYPE ?= RelWithDebInfo
CTEST_ARGS ?=
# ccache, when present, makes rebuilds in several work trees cheap.
CCACHE := $(shell command -v ccache 2>/dev/null)
CMAKE_LAUNCHER := $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE))

.PHONY: all deps configure build build-broker run test stress debug test-asan test-tsan lint format format-check bench \
  fuzz package package-test container-test clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_LAUNCHER) >/dev/null

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

build-broker: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target plantd-broker

run: build-broker
	./$(BUILD_DIR)/plantd-broker $(ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 300 -LE stress $(CTEST_ARGS)

stress: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -L stress $(CTEST_ARGS)

debug:
	$(MAKE) build BUILD_DIR=build-debug BUILD_TYPE=Debug

# SlowStoreRefusesTheExcessAsBusy must push more than the store's 256 MiB
# queue through the broker while a test holds SQLite's write lock, and SQLite
# gives up waiting for a lock after 5 s; in the unoptimised ASan build the
# 320 MiB do not always arrive within that window (CI, 2026-12-02: the store's
# BEGIN timed out first, so nothing was refused as busy). It runs in the
# normal build, where it takes about 7 s.
ASAN_EXCLUDE ?= SlowStoreRefusesTheExcessAsBusy

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPLANTD_SANITIZE=address -DPLANTD_BUILD_BENCH=OFF $(CMAKE_LAUNCHER) >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure --timeout 600 -LE stress -E '$(ASAN_EXCLUDE)' $(CTEST_ARGS)

# Under TSan everything runs 10-20x slower and libzmq is not instrumented:
# the load tests and the drop-mode loss tests, whose timing windows assume
# full speed, are left to the other builds. BlockModeLogNames... and
# AFlooding...: under TSan a libzmq socket in the test process that has
# had to wait for TCP to drain stops sending: the bus test's PUB after about
# 1 MB (exactly 999 blocking sends succeed, its TCP connection idle, the
# broker's bus thread idle with nothing to read), the flooding DEALER after
# exactly 2,000 messages. Both pass in the normal and ASan builds. The same
# stall stops the ROUTER of NativeConnection.StopsReadingWhileMaxReceived...
# once the connection under test stops reading (170 of 2,000 messages in 5 s).
# LargeBodies..., LargeFrames... and ManyBodies... move megabytes through
# libzmq sockets in the test process: TSan checks every byte libzmq's
# uninstrumented threads copy against the test thread's history
# (FindRacyAddress, 97% of the run), seconds per 100 KiB message.
# ForeignSubscriptionsDoNotSlow... compares two rates of 100,000 messages
# through a libzmq PUB in the test process: under TSan the second one got
# nowhere in 530 s (the PUB stall above).
TSAN_EXCLUDE ?= MdpLoad|DropModeCounts|AsyncClientCompletesTenThousand|BlockModeLogNames|AFlooding|StopsReadingWhileMaxReceived|LargeBodiesShared|LargeFramesForwarded|ManyBodiesQueued|ForeignSubscriptionsDoNotSlow

test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPLANTD_SANITIZE=thread -DPLANTD_BUILD_BENCH=OFF $(CMAKE_LAUNCHER) >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure --timeout 600 -LE stress -E '$(TSAN_EXCLUDE)' $(CTEST_ARGS)

# The Dockerfile built with podman (on a Debian base image made from packages:
# no registry is needed) and the broker run from the image's file system. Its
# own build tree, configured only: the image compiles the broker itself.
container-test:
	@./scripts/install-deps.sh container
	@cmake -S . -B build-container -DPLANTD_CONTAINER_TESTS=ON -DPLANTD_BUILD_BENCH=OFF >/dev/null
	cd build-container && ctest --output-on-failure --timeout 2400 -L container $(CTEST_ARGS)

# clang-tidy with the checks in .clang-tidy on src/ and apps/ (and the
# headers of src/, include/, apps/ they include); any finding fails.
lint: build
	run-clang-tidy -quiet -j 2 -p $(BUILD_DIR) '/(src|apps)/.*\.cc$$'

format:
	clang-format -i $$(find src include apps tests bench -name '*.cc' -o -name '*.h')

# CI fails on a formatting difference in the product's code (.clang-format).
format-check: deps
	clang-format --dry-run -Werror $$(find src include apps -name '*.cc' -o -name '*.h')

bench: build
	./scripts/run-bench.sh $(BUILD_DIR)

# The fuzzers need clang (libFuzzer, -fsanitize=fuzzer): their own build
# tree, where only they and the sources they test are compiled
# (fuzz/CMakeLists.txt). fuzz/run.sh replays fuzz/regressions/ and fuzzes
# from fuzz/corpus/; any crash fails.
FUZZ_SECONDS ?= 30

fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLANTD_BUILD_FUZZ=ON \
	  -DPLANTD_BUILD_TESTS=OFF -DPLANTD_BUILD_BENCH=OFF $(CMAKE_LAUNCHER) >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	./fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# The packages are built for /usr with the system files (unit, /etc,
# sysusers.d) and without the test hooks, in a directory of their own so
# that build/ keeps its /usr/local prefix. Only the package tests are
# registered there: nothing of the test suite is compiled.
PACKAGE_DIR ?= build-package

package: deps
	@cmake -S . -B $(PACKAGE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	  -DPLANTD_INSTALL_SYSTEM_FILES=ON -DPLANTD_TEST_HOOKS=OFF -DPLANTD_BUILD_TESTS=OFF \
	  -DPLANTD_BUILD_BENCH=OFF $(CMAKE_LAUNCHER) >/dev/null
	cmake --build $(PACKAGE_DIR) -j $(JOBS)
	cd $(PACKAGE_DIR) && cpack -G DEB
	@ls -l $(PACKAGE_DIR)/*.deb

package-test: package
	cd $(PACKAGE_DIR) && ctest --output-on-failure --timeout 600 -L package $(CTEST_ARGS)

clean:
	rm -rf build build-debug build-asan build-tsan build-package build-container build-fuzz
