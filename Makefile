# hugepte - the two commands: `make matrix` (the main job) and `make test` (every test, every preset).
# Both install what they need first (Debian packages, as root) through tools/setup.sh.

# Longest first: two at a time, so that the short ones fill the end instead of one long one
# running alone on one core.
PRESETS := host host-asan host-gcc system aarch64-linux riscv64-linux release
CMAKE   ?= cmake

.PHONY: all setup matrix test $(addprefix test-,$(PRESETS)) clean
all: test

setup:
	@sh tools/setup.sh

# Boot every system image (x86_64, aarch64, riscv64 in each paging mode) and print the matrix;
# also writes build/matrix.json. Fails if any check failed or any guest did not report.
matrix: setup
	$(CMAKE) --preset system
	$(CMAKE) --build --preset system
	-ctest --preset system
	python3 tools/matrix.py build/system build/matrix.json

# Every preset: configure, build, ctest. Two presets at a time, so that one preset's serial
# stretches (configure, link, the last long compile, its tests) leave no core idle; each
# preset's output is printed in one piece when it ends (-O). Stops at the first that fails.
test: setup
	@$(MAKE) --no-print-directory -j2 -O $(addprefix test-,$(PRESETS))
	@echo "make test: all presets passed ($(PRESETS))"

$(addprefix test-,$(PRESETS)): test-%: setup
	@start=$$(date +%s); $(CMAKE) --workflow --preset $* && \
	  echo "make test: preset $* passed in $$(( $$(date +%s) - start )) s"

clean:
	rm -rf build
