# The two commands a new user runs: `make run` and `make test`. Everything else is a step of those.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test run bench sanitize tsan format clean

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

run: deps
	$(MAKE) build
	$(BUILD)/locrit serve

bench: deps
	@scripts/deps.sh bench
	$(MAKE) build
	$(BUILD)/bench/store_bench
	$(BUILD)/bench/memory_bench
	$(BUILD)/bench/chat_bench
	$(BUILD)/bench/ws_idle_bench
	BUILD=$(BUILD) bench/http_bench.sh

# ASan+UBSan over the unit, fault and e2e tiers (the e2e tests drive the sanitized server), in its
# own build tree.
sanitize: deps
	$(MAKE) build BUILD=build-asan CMAKE_FLAGS="$(CMAKE_FLAGS) -DLOCRIT_SANITIZE=address -DLOCRIT_BUILD_BENCH=OFF"
	LOCRIT_CORRUPTION_TRIALS=100 LOCRIT_KILL_TRIALS=50 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L 'unit|fault|e2e'

# The concurrency tests under ThreadSanitizer, in their own build tree: the memory manager and its
# stress test, the LLM clients, and whole suites of the chat turn, the registry and conversations,
# and the routes (turns answered from work-pool threads).
TSAN_TARGETS = memory_test memory_stress_test llm_test chat_test registry_test server_test
TSAN_SUITES = chat_test registry_test server_test
tsan: deps
	$(MAKE) configure BUILD=build-tsan CMAKE_FLAGS="$(CMAKE_FLAGS) -DLOCRIT_SANITIZE=thread -DLOCRIT_BUILD_BENCH=OFF"
	cmake --build build-tsan -j $(JOBS) --target $(TSAN_TARGETS)
	LOCRIT_STRESS_SECONDS=10 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  ctest --test-dir build-tsan \
	  --output-on-failure -R '^(MemoryManagerTest|MemoryStressTest|BothWireFormats/Llm[A-Za-z]*Test|LlmTlsTest)\.'
	for suite in $(TSAN_SUITES); do \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/$$suite --gtest_brief=1 \
	    || exit 1; \
	done

format:
	find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
