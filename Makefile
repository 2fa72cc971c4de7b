# The two commands a new user runs: `make run` and `make test`. Everything else is a step of those.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test run bench sanitize format clean

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
	$(MAKE) build
	$(BUILD)/bench/store_bench

# ASan+UBSan over the unit and fault tiers, in its own build tree.
sanitize: deps
	$(MAKE) build BUILD=build-asan CMAKE_FLAGS="-DLOCRIT_SANITIZE=address -DLOCRIT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug"
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L 'unit|fault'

format:
	find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
