# umbra: the commands a user types. Everything real happens in CMake/CTest;
# every target first makes sure the Debian packages it needs are installed.
PREFIX   ?= /usr/local
DESTDIR  ?=
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
BUILD    := build
ASAN     := build-asan
FUZZDIR  := build-fuzz

.PHONY: all deps release asan test test-release test-asan demo fuzz bench install clean format

all: release

deps:
	@scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null

$(ASAN)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DUMBRA_SANITIZE=ON >/dev/null

release: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

asan: deps $(ASAN)/CMakeCache.txt
	cmake --build $(ASAN) -j $(JOBS)

test-release: release
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: asan
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Both builds, every test; fails when any test fails.
test: test-release test-asan
	@echo "make test: release and ASan+UBSan suites passed"

demo: release
	scripts/demo.sh

fuzz: deps
	cmake -S . -B $(FUZZDIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DUMBRA_FUZZ=ON >/dev/null
	cmake --build $(FUZZDIR) -j $(JOBS)
	scripts/fuzz.sh $(FUZZDIR) $(FUZZ_SECONDS)

bench: release
	bench/run.sh $(BUILD)

install: release
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZDIR)
