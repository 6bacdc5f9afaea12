# The two commands of the README, and the steps they are made of.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DB ?= sqlite:./data/balanced.db

.PHONY: bench-gateway bench-mysql run test build deps deps-test configure bench clean

run: deps build
	mkdir -p data
	./$(BUILD_DIR)/balanced --listen $(LISTEN) --db $(DB)

test: deps-test build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -j1

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

configure:
	@test -f $(BUILD_DIR)/build.ninja || cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

deps:
	scripts/install-deps.sh build

deps-test:
	scripts/install-deps.sh test

bench: deps build
	scripts/install-deps.sh bench
	bench/run.sh

bench-mysql: deps build
	scripts/install-deps.sh bench
	bench/mysql.sh

bench-gateway: deps build
	scripts/install-deps.sh bench
	bench/gateway.sh

clean:
	rm -rf $(BUILD_DIR)
