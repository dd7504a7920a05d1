.PHONY: test bench

test:
	go test -race -count=1 -timeout 25m ./...

bench:
	./scripts/bench.sh
