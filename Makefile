# Everyday commands. CMake does the building; this only names the steps.
#   make run          install what is missing, build, start the broker on its defaults
#   make test         install what is missing, build, run every test
#   make test-asan    the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan    the same suite under ThreadSanitizer
#   make bench        build and run the benchmarks (never part of `make test`)
#   make lint         clang-tidy over the project's sources

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
BUILD_TYPE ?= RelWithDebInfo
CTEST_ARGS ?=

.PHONY: all deps configure build build-broker run test debug test-asan test-tsan lint format bench clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

build-broker: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target plantd-broker

run: build-broker
	./$(BUILD_DIR)/plantd-broker $(ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 300 $(CTEST_ARGS)

debug:
	$(MAKE) build BUILD_DIR=build-debug BUILD_TYPE=Debug

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPLANTD_SANITIZE=address -DPLANTD_BUILD_BENCH=OFF >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure --timeout 600 $(CTEST_ARGS)

# Under TSan everything runs 10-20x slower and libzmq is not instrumented:
# the load tests and the drop-mode loss tests, whose timing windows assume
# full speed, are left to the other builds. BlockModeLogNames... and
# AFloodingPeer...: under TSan a libzmq socket in the test process that has
# had to wait for TCP to drain stops sending: the bus test's PUB after about
# 1 MB (exactly 999 blocking sends succeed, its TCP connection idle, the
# broker's bus thread idle with nothing to read), the flooding DEALER after
# exactly 2,000 messages. Both pass in the normal and ASan builds.
TSAN_EXCLUDE ?= MdpLoad|DropModeCounts|AsyncClientCompletesTenThousand|BlockModeLogNames|AFloodingPeer

test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPLANTD_SANITIZE=thread -DPLANTD_BUILD_BENCH=OFF >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure --timeout 600 -E '$(TSAN_EXCLUDE)' $(CTEST_ARGS)

lint: configure
	run-clang-tidy -quiet -p $(BUILD_DIR) 'src/|apps/' 2>/dev/null || \
	  clang-tidy -p $(BUILD_DIR) $$(find src apps -name '*.cc')

format:
	clang-format -i $$(find src apps tests bench -name '*.cc' -o -name '*.h')

bench: build
	./scripts/run-bench.sh $(BUILD_DIR)

clean:
	rm -rf build build-debug build-asan build-tsan
