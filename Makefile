.PHONY: test bench scale

test:
	go test -race -count=1 -timeout 25m ./...

bench:
	./scripts/bench.sh

# The scale test: a k8s-lab cluster, three servers on one
# PostgreSQL, SCALE_APPS apps (1000). See scripts/scale.sh.
scale:
	./scripts/scale.sh
